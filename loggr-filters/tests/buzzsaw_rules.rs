//! One test per rule of BuzzSaw's bundled filters (SSH, Kernel, Cosign, Sleep, UserClassifier),
//! and the `buzzsaw` filter's configuration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use loggr_core::{BuildContext, Event, Filter, Metrics, Registry, Value, Verdict};
use loggr_filters::buzzsaw::{
    BuzzsawConfig, Cosign, Kernel, Sleep, Ssh, UserClass, UserClassifier, UserClassifierConfig,
    Vote, VoteChain, VoteFilter, VoteTags,
};

fn event(program: &str, message: &str) -> Event {
    let mut event = Event::new(message.to_owned());
    event.app_name = Some(program.into());
    event
}

/// Runs one filter alone (not in a chain): its vote and the tags it asked for.
fn vote(filter: &dyn VoteFilter, event: &mut Event) -> (Vote, Vec<String>) {
    let mut tags = VoteTags::default();
    let vote = filter.vote(event, &[], &mut tags);
    (vote, tags.iter().map(|t| t.to_string()).collect())
}

fn field<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event.field(name).and_then(Value::as_str)
}

#[test]
fn ssh_accepted_keeps_with_auth_success_and_login_fields() {
    let mut e = event(
        "sshd",
        "Accepted publickey for alice from 10.0.0.9 port 5022 ssh2",
    );
    assert_eq!(
        vote(&Ssh::new(), &mut e),
        (
            Vote::Keep,
            vec!["ssh".into(), "auth".into(), "auth_success".into()]
        )
    );
    assert_eq!(field(&e, "userid"), Some("alice"));
    assert_eq!(field(&e, "source_address"), Some("10.0.0.9"));
    assert_eq!(field(&e, "auth_method"), Some("publickey"));
}

#[test]
fn ssh_failed_keeps_with_auth_failure_for_valid_and_invalid_users() {
    let mut e = event(
        "sshd",
        "Failed password for root from 5.36.59.76 port 42393 ssh2",
    );
    assert_eq!(
        vote(&Ssh::new(), &mut e),
        (
            Vote::Keep,
            vec!["ssh".into(), "auth".into(), "auth_failure".into()]
        )
    );
    assert_eq!(field(&e, "userid"), Some("root"));
    assert_eq!(field(&e, "source_address"), Some("5.36.59.76"));
    assert_eq!(field(&e, "auth_method"), Some("password"));

    let mut e = event(
        "sshd",
        "Failed none for invalid user  admin from 2001:db8::1 port 1 ssh2",
    );
    assert_eq!(vote(&Ssh::new(), &mut e).0, Vote::Keep);
    assert_eq!(field(&e, "userid"), Some("admin"));
    assert_eq!(field(&e, "source_address"), Some("2001:db8::1"));
    assert_eq!(field(&e, "auth_method"), Some("none"));
}

#[test]
fn ssh_other_sshd_lines_have_no_interest_and_get_no_fields() {
    for message in [
        "Invalid user webmaster from 173.234.31.186",
        "pam_unix(sshd:auth): authentication failure; user=root",
        " Accepted password for alice from 1.2.3.4", // not at the start
        "Accepted password for alice",               // no `from`
        "Failed password",
        "",
    ] {
        let mut e = event("sshd", message);
        assert_eq!(
            vote(&Ssh::new(), &mut e),
            (Vote::NoInterest, vec!["ssh".into(), "auth".into()]),
            "{message:?}"
        );
        assert!(e.fields.is_empty(), "{message:?}");
    }
    let mut no_message = Event::new("x");
    no_message.app_name = Some("sshd".into());
    no_message.message = None;
    assert_eq!(vote(&Ssh::new(), &mut no_message).0, Vote::NoInterest);
}

#[test]
fn gated_filters_abstain_on_other_programs() {
    let filters: [(&dyn VoteFilter, &str); 4] = [
        (&Ssh::new(), "Accepted password for alice from 1.2.3.4"),
        (&Kernel::new(), "segfault at 0"),
        (&Cosign::new(), "REGISTER alice EXAMPLE 1.2.3.4 svc"),
        (&Sleep, "Waking up"),
    ];
    for (filter, message) in filters {
        for program in [None, Some("sshd(pam_unix)"), Some("SSHD"), Some("cron")] {
            let mut e = Event::new(message);
            e.app_name = program.map(Into::into);
            assert_eq!(vote(filter, &mut e), (Vote::Neutral, vec![]), "{message}");
            assert!(e.fields.is_empty());
        }
    }
}

#[test]
fn kernel_segfault_anywhere_any_case() {
    for message in [
        "myprog[123]: segfault at 0 ip 00007f sp 00007f error 4",
        "SEGFAULT",
        "something SegFault something",
    ] {
        let mut e = event("kernel", message);
        assert_eq!(
            vote(&Kernel::new(), &mut e),
            (Vote::Keep, vec!["kernel".into(), "segfault".into()]),
            "{message}"
        );
    }
}

#[test]
fn kernel_oom_at_the_start() {
    for message in [
        "java invoked oom-killer: gfp_mask=0x201da, order=0",
        "Out of memory: Kill process 1234 (java) score 900",
        "out of MEMORY",
        "Killed process 1234 (java) total-vm:1kB",
    ] {
        let mut e = event("kernel", message);
        assert_eq!(
            vote(&Kernel::new(), &mut e),
            (Vote::Keep, vec!["kernel".into(), "oom".into()]),
            "{message}"
        );
    }
    for message in [
        " invoked oom-killer",
        "x Out of memory",
        "[1.0] Killed process 1",
    ] {
        let mut e = event("kernel", message);
        assert_eq!(
            vote(&Kernel::new(), &mut e).0,
            Vote::NoInterest,
            "{message}"
        );
    }
}

#[test]
fn kernel_panic_at_the_start() {
    for message in [
        "Kernel panic - not syncing: Fatal exception",
        "panic occurred, switching back to text console",
    ] {
        let mut e = event("kernel", message);
        assert_eq!(
            vote(&Kernel::new(), &mut e),
            (Vote::Keep, vec!["kernel".into(), "panic".into()]),
            "{message}"
        );
    }
    let mut e = event("kernel", "Kernel panic");
    assert_eq!(vote(&Kernel::new(), &mut e).0, Vote::NoInterest);
}

#[test]
fn kernel_oops_at_the_start_followed_by_a_space() {
    for message in [
        "Oops: 0000 [#1] SMP",
        "BUG: unable to handle kernel NULL pointer dereference",
        "kernel BUG at mm/slab.c:2804!",
        "unable to handle kernel paging request",
    ] {
        let mut e = event("kernel", message);
        assert_eq!(
            vote(&Kernel::new(), &mut e),
            (Vote::Keep, vec!["kernel".into(), "oops".into()]),
            "{message}"
        );
    }
    for message in ["Oops:0000", "BUG:", "a kernel BUG at x"] {
        let mut e = event("kernel", message);
        assert_eq!(
            vote(&Kernel::new(), &mut e).0,
            Vote::NoInterest,
            "{message}"
        );
    }
}

#[test]
fn kernel_first_match_wins_and_other_lines_have_no_interest() {
    // Matches oops and segfault: segfault comes first.
    let mut e = event("kernel", "BUG: segfault in something");
    assert_eq!(
        vote(&Kernel::new(), &mut e).1,
        ["kernel", "segfault"].map(String::from)
    );
    // Matches oom and panic patterns? `Out of memory` is first.
    let mut e = event("kernel", "Out of memory and kernel panic ");
    assert_eq!(
        vote(&Kernel::new(), &mut e).1,
        ["kernel", "oom"].map(String::from)
    );
    let mut e = event("kernel", "eth0: link up");
    assert_eq!(
        vote(&Kernel::new(), &mut e),
        (Vote::NoInterest, vec!["kernel".into()])
    );
}

#[test]
fn cosign_register_keeps_with_fields() {
    let mut e = event(
        "cosignd",
        "REGISTER alice EXAMPLE.ORG 192.168.1.20 cosign-wiki",
    );
    assert_eq!(
        vote(&Cosign::new(), &mut e),
        (
            Vote::Keep,
            vec!["cosign".into(), "auth".into(), "auth_success".into()]
        )
    );
    assert_eq!(field(&e, "userid"), Some("alice"));
    assert_eq!(field(&e, "source_address"), Some("192.168.1.20"));
    assert_eq!(field(&e, "cosign_service"), Some("cosign-wiki"));
    assert_eq!(field(&e, "auth_method"), None);
    for message in [
        "REGISTER alice EXAMPLE.ORG 192.168.1.20 svc extra",
        "REGISTER alice EXAMPLE.ORG 192.168.1.20",
        "LOGOUT alice",
        " REGISTER a b c d",
    ] {
        let mut e = event("cosignd", message);
        assert_eq!(
            vote(&Cosign::new(), &mut e),
            (Vote::NoInterest, vec!["cosign".into(), "auth".into()]),
            "{message}"
        );
        assert!(e.fields.is_empty());
    }
}

#[test]
fn sleep_exact_messages() {
    let mut e = event("lcfg-sleep", "Waking up");
    assert_eq!(
        vote(&Sleep, &mut e),
        (Vote::Keep, vec!["sleep".into(), "acpi_wake".into()])
    );
    let mut e = event("lcfg-sleep", "Going to sleep");
    assert_eq!(
        vote(&Sleep, &mut e),
        (Vote::Keep, vec!["sleep".into(), "acpi_sleep".into()])
    );
    for message in ["Waking up ", "waking up", "Going to sleep now", ""] {
        let mut e = event("lcfg-sleep", message);
        assert_eq!(
            vote(&Sleep, &mut e),
            (Vote::NoInterest, vec!["sleep".into()]),
            "{message:?}"
        );
    }
}

/// A classifier over fake account files: `alice` and `bob` are people (primary group and
/// member list), `daemon` is a system account.
fn classifier_config(dir: &Path) -> UserClassifierConfig {
    let passwd = dir.join("passwd");
    let group = dir.join("group");
    let nonpersonal = dir.join("nonpersonal.txt");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\n\
         daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         alice:x:1000:500:Alice:/home/alice:/bin/bash\n\
         bob:x:1001:100:Bob:/home/bob:/bin/bash\n\
         carol:x:1002:100:Carol:/home/carol:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(
        &group,
        "root:x:0:\nusers:x:100:carol\npeople:x:500:bob,ghost\n",
    )
    .unwrap();
    std::fs::write(
        &nonpersonal,
        "# daemons and teams\n\n  wwwrun  \nhelpdesk\n",
    )
    .unwrap();
    UserClassifierConfig {
        passwd_file: passwd,
        group_file: group,
        nonpersonal_file: Some(nonpersonal),
        ..UserClassifierConfig::default()
    }
}

#[test]
fn user_classifier_mangles_names() {
    let dir = tempfile::tempdir().unwrap();
    let classifier = UserClassifier::new(&classifier_config(dir.path())).unwrap();
    for (name, mangled) in [
        ("@@@Alice", "alice"),
        ("ROOT", "root"),
        ("tmp", "temp"),
        ("tmpfoo", "tmpfoo"),
        ("Administrator", "admin"),
        ("admin1", "admin"),
        ("backup_user", "backup"),
        ("guest2", "guest"),
        ("mysqld", "mysql"),
        ("nagios3", "nagios"),
        ("oracle10", "oracle"),
        ("postgres", "postgres"),
        ("tester", "test"),
        ("webmaster", "web"),
        ("wwwdata", "www"),
        ("teamspeak3", "teamspeak"),
        ("bob", "bob"),
    ] {
        assert_eq!(classifier.mangle(name), mangled, "{name}");
    }
}

#[test]
fn user_classifier_classes() {
    let dir = tempfile::tempdir().unwrap();
    let classifier = UserClassifier::new(&classifier_config(dir.path())).unwrap();
    for (name, class) in [
        ("root", UserClass::Root),
        ("r00t", UserClass::Root),
        ("r0ot", UserClass::Root),
        ("roots", UserClass::Others),
        ("alice", UserClass::Real),   // primary group people
        ("bob", UserClass::Real),     // member of people
        ("ghost", UserClass::Others), // member listed, but no account
        ("s1234567", UserClass::Real),
        ("ss12345", UserClass::Real),
        ("1234567", UserClass::Real),
        ("12345678", UserClass::Others),
        ("v1abc", UserClass::Real),
        ("v1abc2", UserClass::Real),
        ("carol", UserClass::Nonperson), // local account, not in people
        ("daemon", UserClass::Nonperson),
        ("wwwrun", UserClass::Nonperson), // non-personal list, trimmed
        ("helpdesk", UserClass::Nonperson),
        ("# daemons and teams", UserClass::Others),
        ("mallory", UserClass::Others),
    ] {
        assert_eq!(classifier.classify(name), class, "{name}");
    }
}

#[test]
fn user_classifier_custom_patterns_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = UserClassifierConfig {
        real_patterns: vec!["^[a-z]{2}[0-9]{3}$".into()],
        people_group: "nobody-has-this".into(),
        ..classifier_config(dir.path())
    };
    let classifier = UserClassifier::new(&config).unwrap();
    assert_eq!(classifier.classify("ab123"), UserClass::Real);
    assert_eq!(classifier.classify("s1234567"), UserClass::Others);
    assert_eq!(classifier.classify("alice"), UserClass::Nonperson);

    let bad = UserClassifierConfig {
        real_patterns: vec!["(unclosed".into()],
        ..classifier_config(dir.path())
    };
    let error = UserClassifier::new(&bad).unwrap_err();
    assert!(error.to_string().contains("real_patterns"), "{error}");
    let missing = UserClassifierConfig {
        passwd_file: dir.path().join("nope"),
        ..classifier_config(dir.path())
    };
    let error = UserClassifier::new(&missing).unwrap_err();
    assert!(error.to_string().contains("passwd_file"), "{error}");
}

#[test]
fn user_classifier_runs_only_on_kept_events_with_a_userid() {
    let dir = tempfile::tempdir().unwrap();
    let classifier = UserClassifier::new(&classifier_config(dir.path())).unwrap();
    assert!(!classifier.can_keep());
    let with_user = |userid: Option<&str>| {
        let mut e = event("x", "y");
        if let Some(userid) = userid {
            e.set_field("userid", userid.to_owned());
        }
        e
    };
    let cast = |e: &mut Event, earlier: &[(&str, Vote)]| {
        let mut tags = VoteTags::default();
        let vote = classifier.vote(e, earlier, &mut tags);
        (vote, tags.iter().map(|t| t.to_string()).collect::<Vec<_>>())
    };
    let kept: &[(&str, Vote)] = &[("ssh", Vote::Keep), ("kernel", Vote::Neutral)];
    let not_kept: &[(&str, Vote)] = &[("ssh", Vote::NoInterest), ("kernel", Vote::Neutral)];
    assert_eq!(
        cast(&mut with_user(Some("Admin7")), kept),
        (Vote::Neutral, vec!["user_is_others".into()])
    );
    assert_eq!(
        cast(&mut with_user(Some("@@@R00T")), kept),
        (Vote::Neutral, vec!["user_is_root".into()])
    );
    assert_eq!(
        cast(&mut with_user(Some("root")), not_kept),
        (Vote::Neutral, vec![])
    );
    assert_eq!(
        cast(&mut with_user(Some("root")), &[]),
        (Vote::Neutral, vec![])
    );
    assert_eq!(cast(&mut with_user(None), kept), (Vote::Neutral, vec![]));
    assert_eq!(
        cast(&mut with_user(Some("")), kept),
        (Vote::Neutral, vec![])
    );
    // In a chain: SSH keeps, the classifier adds its tag; the userid field is unchanged.
    let chain = VoteChain::new(vec![Box::new(Ssh::new()), Box::new(classifier.clone())]);
    let mut e = event(
        "sshd",
        "Accepted password for ALICE from 1.2.3.4 port 2 ssh2",
    );
    assert_eq!(chain.apply(&mut e).unwrap(), Verdict::Keep);
    assert!(e.has_tag("user_is_real"));
    assert_eq!(field(&e, "userid"), Some("ALICE"));
    let mut e = event("sshd", "Connection closed by 1.2.3.4");
    e.set_field("userid", "root");
    assert_eq!(chain.apply(&mut e).unwrap(), Verdict::Discard);
    assert!(!e.has_tag("user_is_root"));
}

fn registry() -> Registry {
    loggr_filters::link();
    Registry::from_inventory().unwrap()
}

fn build(registry: &Registry, toml_text: &str) -> Result<Box<dyn Filter>, loggr_core::ConfigError> {
    let table: toml::Table = toml_text.parse().unwrap();
    let cx = BuildContext {
        name: "bz".into(),
        metrics: Metrics::new(),
    };
    registry
        .filter("buzzsaw")
        .unwrap()
        .build("filters[0]", table, &cx)
}

#[test]
fn buzzsaw_config_builds_through_the_registry() {
    let registry = registry();
    assert!(registry.filter_types().any(|name| name == "buzzsaw"));
    let dir = tempfile::tempdir().unwrap();
    let config = classifier_config(dir.path());
    let text = format!(
        "filters = [\"sleep\", \"user_classifier\"]\n[user_classifier]\npasswd_file = {:?}\n\
         group_file = {:?}\n",
        config.passwd_file, config.group_file
    );
    let filter = build(&registry, &text).unwrap();
    assert_eq!(filter.name(), "bz");
    let mut e = event("sshd", "Accepted password for alice from 1.2.3.4");
    assert_eq!(filter.apply(&mut e).unwrap(), Verdict::Discard); // no ssh filter
    let mut e = event("lcfg-sleep", "Going to sleep");
    assert_eq!(filter.apply(&mut e).unwrap(), Verdict::Keep);

    // Default: every filter, in order; an empty list keeps everything.
    let chain = BuzzsawConfig::default().chain("d").unwrap();
    assert_eq!(
        chain.filter_names().collect::<Vec<_>>(),
        ["ssh", "kernel", "cosign", "sleep", "user_classifier"]
    );
    let all = build(&registry, "filters = []").unwrap();
    assert_eq!(all.apply(&mut event("cron", "x")).unwrap(), Verdict::Keep);
}

#[test]
fn buzzsaw_config_errors_name_the_culprit() {
    let registry = registry();
    let error = build(&registry, "filters = [\"ssh\", \"nope\"]")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("filters") && error.contains("nope"),
        "{error}"
    );
    let error = build(&registry, "filtres = []").unwrap_err().to_string();
    assert!(error.contains("filtres"), "{error}");
    let error = build(&registry, "[user_classifier]\npeople = \"x\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("people"), "{error}");
    let error = build(&registry, "filters = [\"ssh\", \"ssh\"]").unwrap_err();
    let chain = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains("`ssh` is listed twice"), "{chain}");
}
