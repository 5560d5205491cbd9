//! Replays the RELP fuzz targets' crash inputs (`testdata/fuzz-regressions/<target>/`) and a
//! set of hand-written hostile inputs through the same checks the targets run.

use std::path::Path;

use loggr_relp::checks;

/// `[max_data_len selector, split count, split lengths…, payload…]`, as the targets read it.
fn input(limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut data = vec![limit, 0];
    data.extend_from_slice(payload);
    data
}

fn nasty() -> Vec<Vec<u8>> {
    let offers =
        "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";
    let open = format!("1 open {} {offers}\n", offers.len()).into_bytes();
    let open = open.as_slice();
    let mut session = open.to_vec();
    session.extend_from_slice(b"2 syslog 5 <1>ab\n3 syslog 3 abc\n4 syslog 5 <2>cd\n5 close 0\n");
    let mut huge = open.to_vec();
    huge.extend_from_slice(format!("2 syslog 99999999999 {}\n", "x".repeat(100)).as_bytes());
    vec![
        vec![],
        b"\n".to_vec(),
        b"1".to_vec(),
        b"0 open 0\n".to_vec(),
        b"1000000000 open 0\n".to_vec(),
        b"1 open 0 \n".to_vec(),
        b"1 syslog 3 abc\n".to_vec(),
        b"1 sysl\x00g 3 abc\n".to_vec(),
        b"1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n".to_vec(),
        b"1 open 5 ab\n".to_vec(),
        b"1 open -1\n".to_vec(),
        b"99999999999999999999 open 0\n".to_vec(),
        session,
        huge,
        [
            open,
            b"2 syslog 3 \xff\xfe\x00\n2 syslog 3 abc\n".as_slice(),
        ]
        .concat(),
        open.repeat(3),
        [open, b"2 syslog 3 abc\n".as_slice()].concat().repeat(2),
        vec![b'9'; 100_000],
    ]
}

fn fixtures(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz-regressions")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("fixture directory {} is missing: {error}", dir.display()));
    entries
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.file_name().is_some_and(|n| n != ".gitkeep"))
        .map(|path| std::fs::read(path).expect("readable fixture"))
        .collect()
}

#[test]
fn codec_fixtures_and_hostile_inputs_pass_the_checks() {
    for data in fixtures("relp_codec") {
        checks::codec(&data);
    }
    for payload in nasty() {
        for limit in [0, 5, 255] {
            checks::codec(&input(limit, &payload));
        }
        // The same bytes cut into small chunks.
        let mut chunked = vec![7, 5, 0, 1, 2, 3, 9];
        chunked.extend_from_slice(&payload);
        checks::codec(&chunked);
    }
}

#[test]
fn session_fixtures_and_hostile_inputs_pass_the_checks() {
    for data in fixtures("relp_session") {
        checks::session(&data);
    }
    for payload in nasty() {
        checks::session(&input(255, &payload));
    }
}
