//! SCHC over Sigfox (RFC 9442).
