//! `schc lorawan iid`: RFC 9011's IID from the command line (V-LW-1).

mod common;
use common::{fails, ok};

const EUI: &str = "1122334455667788";
const KEY: &str = "00AABBCCDDEEFF00AABBCCDDEEFFAABB";

/// The binary form (RFC 9011 §5.3's text) and the ASCII form (its printed example).
#[test]
fn iid_binary_and_ascii() {
    assert_eq!(
        ok(&["lorawan", "iid", "--deveui", EUI, "--appskey", KEY]),
        "4e822d9775b26499\n"
    );
    assert_eq!(
        ok(&[
            "lorawan",
            "iid",
            "--deveui",
            EUI,
            "--appskey",
            KEY,
            "--ascii"
        ]),
        "ba59f4b196c6c343\n"
    );
    // Separators and case do not matter.
    assert_eq!(
        ok(&[
            "lorawan",
            "iid",
            "--deveui",
            "11:22:33:44:55:66:77:88",
            "--appskey",
            "00aabbcc ddeeff00 aabbccdd eeffaabb",
        ]),
        "4e822d9775b26499\n"
    );
    // The byte-reversed DevEUI gives the third CMAC of rfc-examples.md.
    assert_eq!(
        ok(&[
            "lorawan",
            "iid",
            "--deveui",
            "8877665544332211",
            "--appskey",
            KEY
        ]),
        "5bbe01533da5fa6c\n"
    );
}

/// Wrong lengths and bad hex fail with one line that names the argument.
#[test]
fn iid_bad_input() {
    let e = fails(&["lorawan", "iid", "--deveui", "11223344", "--appskey", KEY]);
    assert_eq!(e, "error: --deveui: 4 bytes given, 8 needed\n");
    let e = fails(&["lorawan", "iid", "--deveui", EUI, "--appskey", "00"]);
    assert_eq!(e, "error: --appskey: 1 byte given, 16 needed\n");
    let e = fails(&[
        "lorawan",
        "iid",
        "--deveui",
        "11223344556677zz",
        "--appskey",
        KEY,
    ]);
    assert!(
        e.starts_with("error: --deveui: invalid hex digit 'z'"),
        "{e}"
    );
}
