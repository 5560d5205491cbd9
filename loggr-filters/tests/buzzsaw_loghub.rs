//! BuzzSaw's stack over the loghub samples (`../shared/corpus/loghub`), parsed as RFC 3164:
//! the counts of `auth_success`, `auth_failure` and kernel tags match an independent scan of
//! the raw lines, and lines of other programs are dropped untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use loggr_core::syslog::{Format, SyslogOptions};
use loggr_core::{Bytes, Event, Filter, ParseContext, Value, Verdict};
use loggr_filters::buzzsaw::{BuzzsawConfig, UserClassifierConfig, VoteChain};

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/loghub")
        .join(name)
}

fn read(name: &str) -> String {
    let path = corpus(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read the loghub sample {} ({error}); the shared corpus must be checked out \
             next to the workspace",
            path.display()
        )
    })
}

fn parse(text: &str) -> Vec<Event> {
    let options = SyslogOptions {
        year: Some(2005),
        timezone: Some("UTC".into()),
        ..SyslogOptions::default()
    };
    let parser = Format::Rfc3164.parser(&options).unwrap();
    let cx = ParseContext::now();
    text.lines()
        .map(|line| {
            parser
                .parse(Bytes::copy_from_slice(line.as_bytes()), &cx)
                .unwrap_or_else(|error| panic!("{line}: {error}"))
        })
        .collect()
}

fn stack() -> VoteChain {
    // The account files of the test machine are irrelevant here: give empty ones.
    let dir = std::env::temp_dir().join(format!("loggr-buzzsaw-loghub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("group"), "root:x:0:\n").unwrap();
    BuzzsawConfig {
        user_classifier: UserClassifierConfig {
            passwd_file: dir.join("passwd"),
            group_file: dir.join("group"),
            ..UserClassifierConfig::default()
        },
        ..BuzzsawConfig::default()
    }
    .chain("buzzsaw")
    .unwrap()
}

/// What an independent reading of one raw line says: (program, message).
fn split_line(line: &str) -> Option<(&str, &str)> {
    // "Mon DD HH:MM:SS host program[pid]: message"
    let mut rest = line;
    for _ in 0..4 {
        rest = rest.trim_start().split_once(' ')?.1;
    }
    let (tag, message) = rest.split_once(": ")?;
    let program = tag.split('[').next()?;
    Some((program, message))
}

/// The SSH rules read by hand: `Accepted M for U from A` / `Failed M for [invalid user] U from A`.
fn scan_ssh(message: &str) -> Option<(&'static str, String)> {
    let words: Vec<&str> = message.split_whitespace().collect();
    let at = |i: usize| words.get(i).copied().unwrap_or("");
    let starts = |prefix: &str| message.starts_with(prefix) && words.first() == Some(&prefix);
    if starts("Accepted") && at(2) == "for" && at(4) == "from" && words.len() > 5 {
        return Some(("auth_success", at(3).to_owned()));
    }
    if starts("Failed") && at(2) == "for" {
        if at(3) == "invalid" && at(4) == "user" && at(6) == "from" && words.len() > 7 {
            return Some(("auth_failure", at(5).to_owned()));
        }
        if at(4) == "from" && words.len() > 5 {
            return Some(("auth_failure", at(3).to_owned()));
        }
    }
    None
}

#[test]
fn openssh_logins_match_an_independent_scan() {
    let text = read("OpenSSH_2k.log");
    let mut events = parse(&text);
    let chain = stack();
    let (mut expected_success, mut expected_failure) = (0, 0);
    let (mut success, mut failure) = (0, 0);
    for (line, event) in text.lines().zip(events.iter_mut()) {
        let (program, message) = split_line(line).unwrap();
        assert_eq!(program, "sshd");
        assert_eq!(event.message_str(), message);
        let expected = scan_ssh(message);
        let verdict = chain.apply(event).unwrap();
        match &expected {
            Some(("auth_success", _)) => expected_success += 1,
            Some(_) => expected_failure += 1,
            None => {}
        }
        success += usize::from(event.has_tag("auth_success"));
        failure += usize::from(event.has_tag("auth_failure"));
        match expected {
            Some((tag, user)) => {
                assert_eq!(verdict, Verdict::Keep, "{line}");
                assert!(event.has_tag(tag) && event.has_tag("ssh") && event.has_tag("auth"));
                assert_eq!(event.field("userid"), Some(&Value::from(user)), "{line}");
                assert_eq!(
                    event
                        .tags
                        .iter()
                        .filter(|t| t.starts_with("user_is_"))
                        .count(),
                    1,
                    "{line}"
                );
            }
            None => {
                assert_eq!(verdict, Verdict::Discard, "{line}");
                assert!(event.tags.is_empty() && event.fields.is_empty(), "{line}");
            }
        }
    }
    assert_eq!((success, failure), (expected_success, expected_failure));
    // The sample has both kinds, so the test proves something.
    assert!(
        expected_success > 0 && expected_failure > 100,
        "{expected_success} {expected_failure}"
    );
}

/// The Kernel rules read by hand, in order, on a lower-cased message.
fn scan_kernel(message: &str) -> Option<&'static str> {
    let m = message.to_lowercase();
    if m.contains("segfault") {
        Some("segfault")
    } else if m.find(" invoked oom-killer").is_some_and(|at| at > 0)
        || m.starts_with("out of memory")
        || m.starts_with("killed process")
    {
        Some("oom")
    } else if m.starts_with("kernel panic ") || m.starts_with("panic occurred") {
        Some("panic")
    } else if ["oops: ", "bug: ", "kernel bug ", "unable to handle "]
        .iter()
        .any(|p| m.starts_with(p))
    {
        Some("oops")
    } else {
        None
    }
}

#[test]
fn every_loghub_sample_keeps_exactly_what_a_scan_expects() {
    let chain = stack();
    for name in [
        "Linux_2k.log",
        "Mac_2k.log",
        "OpenSSH_2k.log",
        "Thunderbird_2k.log",
    ] {
        let text = read(name);
        let options = SyslogOptions {
            year: Some(2005),
            timezone: Some("UTC".into()),
            ..SyslogOptions::default()
        };
        let parser = Format::Auto.parser(&options).unwrap();
        let cx = ParseContext::now();
        let (mut kept, mut expected_kept, mut kernel_lines) = (0, 0, 0);
        for line in text.lines() {
            let Ok(mut event) = parser.parse(Bytes::copy_from_slice(line.as_bytes()), &cx) else {
                continue;
            };
            let program = event.app_name.as_deref().unwrap_or("").to_owned();
            let message = event.message_str().to_owned();
            let expected = match program.as_str() {
                "sshd" => scan_ssh(&message).map(|(tag, _)| tag),
                "kernel" => {
                    kernel_lines += 1;
                    scan_kernel(&message)
                }
                _ => None,
            };
            let verdict = chain.apply(&mut event).unwrap();
            assert_eq!(
                verdict == Verdict::Keep,
                expected.is_some(),
                "{name}: {line}"
            );
            if let Some(tag) = expected {
                expected_kept += 1;
                assert!(event.has_tag(tag), "{name}: {line}");
            }
            kept += usize::from(verdict == Verdict::Keep);
            if !matches!(
                program.as_str(),
                "sshd" | "kernel" | "cosignd" | "lcfg-sleep"
            ) {
                assert!(
                    event.tags.is_empty() && event.fields.is_empty(),
                    "{name}: {line}"
                );
            }
        }
        assert_eq!(kept, expected_kept, "{name}");
        if name == "Mac_2k.log" || name == "Linux_2k.log" {
            assert!(kernel_lines > 0, "{name} has kernel lines");
        }
    }
}
