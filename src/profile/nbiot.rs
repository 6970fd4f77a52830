//! SCHC over NB-IoT (RFC 9391).
