//! Independent clients drive the virtual key over UDP: python-fido2's CTAPHID client, and
//! Nitrokey's Python SDK (the code behind `nitropy nk3 secrets`).

mod common;

#[test]
fn python_fido2_speaks_ctaphid_with_the_virtual_key() {
    let emulator = common::spawn_udp(&[]);
    let out = common::run_python_check("check_fido2.py", emulator.port);
    assert!(out.contains("PING ok: 5 and 7609 bytes echoed"), "{out}");
    assert!(out.contains("FIDO2 CHECKS PASSED"), "{out}");
}

#[test]
fn nitrokey_sdk_manages_credentials_on_the_virtual_key() {
    let emulator = common::spawn_udp(&[]);
    let out = common::run_python_check("check_nitrokey.py", emulator.port);
    assert!(out.contains("CALCULATE ok"), "{out}");
    assert!(out.contains("NITROKEY SDK CHECKS PASSED"), "{out}");
}
