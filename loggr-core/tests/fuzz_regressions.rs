//! Fuzz findings never come back: every file under `testdata/fuzz-regressions/<target>/` is
//! run through the same checks as the fuzz target `<target>` (`fuzz/fuzz_targets/`), and so
//! is a set of hand-written nasty inputs per target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use loggr_core::syslog::checks::{decoder_input, Target};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-regressions")
}

/// Inputs that have broken, or could break, a byte scanner.
fn nasty_frames() -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = [
        &b""[..],
        b"<",
        b">",
        b"<>",
        b"<999>",
        b"<191>",
        b"<192>1 - - - - - -",
        b"<0001>1 - - - - - -",
        b"<13>1",
        b"<13>1 ",
        b"<13>1 - - - - - - \xEF\xBB\xBF",
        b"<13>1 - - - - - - \xEF\xBB\xBF\xFF",
        b"<13>1 - - - - - [a b=\"\\",
        b"<13>1 - - - - - [a b=\"\xFF\"]",
        b"<13>1 0000-01-01T00:00:00+23:59 - - - - -",
        b"<13>1 9999-12-31T23:59:59.999999999-23:59 - - - - -",
        b"<13>1 2024-02-30T00:00:00Z - - - - -",
        b"<13>1 - h a p m - @[_PID=1] @[_PID=2]",
        b"<13>Feb 29 12:00:00 host app[1]: leap day",
        b"<13>Mar 10 02:30:00 host app: New York DST gap",
        b"Nov  3 01:30:00 host app: New York DST overlap",
        b"2024-03-10T02:30:00 host app[1]: gap",
        b"0000-01-01T00:00:00Z h a: m",
        b"{",
        b"{}",
        b"{\"fields\":{\"f\":1e400}}",
        b"{\"fields\":{\"f\":0.30000000000000004,\"g\":-0.0,\"h\":[[[]]]}}",
        b"{\"timestamp\":\"-009999-01-01T00:00:00Z\"}",
        b"{\"raw_base64\":\"////\"}",
        b"\xFF\xFE\xFD",
        b"<13>\xFF\xFE",
        b"\0\0\0\0",
        b"<13>1 - \0 - - - -",
        b"<13>Oct 11 22:14:15 \0 \0: \0",
    ]
    .iter()
    .map(|frame| frame.to_vec())
    .collect();
    frames.push(b"9".repeat(100_000));
    frames.push(format!("<{}>", "9".repeat(1000)).into_bytes());
    frames.push(format!("<13>1 - - - - - {}", "[a]".repeat(1000)).into_bytes());
    frames.push(format!("<13>1 - - - - - [a{}]", " b=\"\\]\"".repeat(10_000)).into_bytes());
    frames.push(format!("{}{}", "[".repeat(50_000), "{".repeat(50_000)).into_bytes());
    frames.push(format!("<13>1 - - - - - - {}", "é".repeat(50_000)).into_bytes());
    frames.push(b"x".repeat(100_000));
    frames
}

/// Streams that have broken, or could break, a framing decoder, in the decoder input layout.
fn nasty_streams() -> Vec<Vec<u8>> {
    let big = 255; // max_length 8192
    let mut streams: Vec<Vec<u8>> = vec![
        decoder_input(big, &[], b""),
        decoder_input(0, &[], b""),
        decoder_input(0, &[0, 0, 0], b"\n\n\n"),
        decoder_input(big, &[], b"<"),
        decoder_input(big, &[], b"<999>"),
        decoder_input(big, &[], b"9999999999999999999 "),
        decoder_input(big, &[5, 5, 5], b"9999999999999999999 x"),
        decoder_input(big, &[], b"18446744073709551616 x"),
        decoder_input(big, &[], b"4294967296 x"),
        decoder_input(big, &[], b"0 "),
        decoder_input(big, &[], b"1 x0 "),
        decoder_input(big, &[1, 1], b"3 a\n\n3 bcd\r\n"),
        decoder_input(3, &[2, 2, 2], b"5 abcde\r\n\r\n12345\n6 ok\r\n"),
        decoder_input(2, &[1], b"abc\rdef\r\r\n\r"),
        decoder_input(4, &[], b"1234\r"),
        decoder_input(4, &[5], b"12345\r\n12345\n"),
        decoder_input(big, &[], b"\xFF\0\xFE\n\0\0\n"),
        decoder_input(0, &[1, 1, 1, 1], b"1 \n2 \n\n"),
    ];
    let digits = b"9".repeat(100_000);
    streams.push(decoder_input(big, &[], &digits));
    streams.push(decoder_input(16, &[200, 1, 0, 255], &digits));
    streams.push(decoder_input(big, &[], &b"a".repeat(100_000)));
    streams.push(decoder_input(200, &[10; 16], &b"\n".repeat(100_000)));
    let lines: Vec<u8> = (0..10_000)
        .flat_map(|n| format!("<13>{n}\n").into_bytes())
        .collect();
    streams.push(decoder_input(7, &[3, 4, 250, 1], &lines));
    let counted: Vec<u8> = (1..2_000)
        .flat_map(|n| format!("{} {}", n % 90 + 1, "x".repeat(n % 90 + 1)).into_bytes())
        .collect();
    streams.push(decoder_input(40, &[1, 2, 3, 100], &counted));
    streams
}

#[test]
fn hand_written_nasty_inputs_pass_every_check() {
    let mut failures = Vec::new();
    for target in Target::ALL {
        let inputs = if target.is_decoder() {
            nasty_streams()
        } else {
            nasty_frames()
        };
        for input in inputs {
            if std::panic::catch_unwind(|| target.check(&input)).is_err() {
                let shown = String::from_utf8_lossy(&input[..input.len().min(80)]).into_owned();
                failures.push(format!(
                    "{}: {shown:?} ({} bytes)",
                    target.name(),
                    input.len()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "checks failed on:\n{}",
        failures.join("\n")
    );
}

#[test]
fn fuzz_regression_fixtures_pass_every_check() {
    let root = fixtures_dir();
    let entries = std::fs::read_dir(&root).unwrap_or_else(|error| {
        panic!(
            "the fuzz regression fixtures are missing: cannot read {}: {error}",
            root.display()
        )
    });
    let mut folders = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !path.is_dir() {
            continue;
        }
        let target = Target::from_name(&name)
            .unwrap_or_else(|| panic!("{}: no fuzz target is named {name:?}", path.display()));
        folders += 1;
        for file in std::fs::read_dir(&path).unwrap() {
            let file = file.unwrap().path();
            if file
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let input = std::fs::read(&file).unwrap();
            let result = std::panic::catch_unwind(|| target.check(&input));
            assert!(result.is_ok(), "{} fails its checks", file.display());
        }
    }
    assert_eq!(
        folders,
        Target::ALL.len(),
        "{} should have one folder per fuzz target",
        root.display()
    );
}
