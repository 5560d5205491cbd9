//! Peer names for the `name` authentication mode: the DNS names a certificate presents, and
//! RFC 6125 matching.
//!
//! A certificate presents its `dNSName` subjectAltNames; only when it has none does its subject
//! common name count (RFC 6125 §6.4.4). A presented name may start with a wildcard label
//! (`*.example.com`), which stands for exactly one label: it matches `a.example.com`, not
//! `a.b.example.com` nor `example.com`. Partial wildcards (`a*.example.com`) match nothing.
//! Comparison ignores ASCII case and a trailing dot.
//!
//! rsyslog also lets the *permitted peer* be a wildcard (`*.example.com` permits every host
//! of the domain); the same rule is applied in that direction.
//!
//! The certificate is read with a minimal DER walker (enough for the subject and the
//! subjectAltName extension), so that no X.509 crate is needed; the chain itself is validated
//! by rustls' webpki.

/// The names a certificate presents: its DNS subjectAltNames, or its common names when it has
/// none. `None` when the DER cannot be read.
pub(crate) fn presented_names(cert_der: &[u8]) -> Option<Vec<String>> {
    let (dns, cns) = cert_names(cert_der)?;
    Some(if dns.is_empty() { cns } else { dns })
}

/// Whether any presented name matches any permitted one (a wildcard on either side).
pub(crate) fn permitted(presented: &[String], permitted: &[String]) -> bool {
    presented.iter().any(|p| {
        permitted
            .iter()
            .any(|r| wildcard_match(p, r) || wildcard_match(r, p))
    })
}

fn normalize(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// RFC 6125 §6.4: does `pattern` (possibly `*.rest`) match the plain name `name`?
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (normalize(pattern), normalize(name));
    if pattern.is_empty() || name.is_empty() || name.contains('*') {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(rest) => {
            // The wildcard must stand for one whole label, below at least two labels.
            if !rest.contains('.') || rest.contains('*') {
                return false;
            }
            match name.split_once('.') {
                Some((label, name_rest)) => {
                    !label.is_empty() && name_rest.eq_ignore_ascii_case(rest)
                }
                None => false,
            }
        }
        None => !pattern.contains('*') && pattern.eq_ignore_ascii_case(name),
    }
}

/// One DER TLV: (tag, value, rest). Single-octet tags only, definite lengths up to 4 octets.
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (octets, after) = rest.split_at_checked(n)?;
        rest = after;
        octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

fn expect(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, value, rest) = tlv(data)?;
    (t == tag).then_some((value, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// (DNS subjectAltNames, subject common names).
fn cert_names(der: &[u8]) -> Option<(Vec<String>, Vec<String>)> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    // [0] version (optional), then serialNumber.
    let (tag, _, after) = tlv(tbs)?;
    let rest = if tag == 0xa0 { tlv(after)?.2 } else { after };
    let (_, rest) = expect(rest, SEQUENCE)?; // signature
    let (_, rest) = expect(rest, SEQUENCE)?; // issuer
    let (_, rest) = expect(rest, SEQUENCE)?; // validity
    let (subject, rest) = expect(rest, SEQUENCE)?;
    let (_, mut rest) = expect(rest, SEQUENCE)?; // subjectPublicKeyInfo
    let cns = common_names(subject)?;
    let mut dns = Vec::new();
    while !rest.is_empty() {
        let (tag, value, after) = tlv(rest)?;
        rest = after;
        if tag == 0xa3 {
            let (mut exts, _) = expect(value, SEQUENCE)?;
            while !exts.is_empty() {
                let (ext, after) = expect(exts, SEQUENCE)?;
                exts = after;
                let (oid, mut body) = expect(ext, OID)?;
                if let Some((0x01, _, after)) = tlv(body) {
                    body = after; // critical
                }
                let (value, _) = expect(body, 0x04)?;
                if oid == OID_SUBJECT_ALT_NAME {
                    let (mut names, _) = expect(value, SEQUENCE)?;
                    while !names.is_empty() {
                        let (tag, name, after) = tlv(names)?;
                        names = after;
                        if tag == 0x82 {
                            dns.push(String::from_utf8_lossy(name).into_owned());
                        }
                    }
                }
            }
        }
    }
    Some((dns, cns))
}

fn common_names(mut subject: &[u8]) -> Option<Vec<String>> {
    let mut cns = Vec::new();
    while !subject.is_empty() {
        let (mut rdn, after) = expect(subject, SET)?;
        subject = after;
        while !rdn.is_empty() {
            let (attr, after) = expect(rdn, SEQUENCE)?;
            rdn = after;
            let (oid, value) = expect(attr, OID)?;
            if oid == OID_COMMON_NAME {
                let (tag, text, _) = tlv(value)?;
                let text = match tag {
                    // BMPString
                    0x1e => {
                        let units: Vec<u16> = text
                            .chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]))
                            .collect();
                        String::from_utf16_lossy(&units)
                    }
                    _ => String::from_utf8_lossy(text).into_owned(),
                };
                cns.push(text);
            }
        }
    }
    Some(cns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6125_wildcards() {
        assert!(wildcard_match("*.example.com", "a.example.com"));
        assert!(wildcard_match("*.Example.COM", "A.example.com."));
        assert!(!wildcard_match("*.example.com", "a.b.example.com"));
        assert!(!wildcard_match("*.example.com", "example.com"));
        assert!(!wildcard_match("*.example.com", ".example.com"));
        assert!(!wildcard_match("*.com", "example.com"));
        assert!(!wildcard_match("a*.example.com", "ab.example.com"));
        assert!(!wildcard_match("*.*.example.com", "a.b.example.com"));
        assert!(!wildcard_match("*", "example"));
        assert!(wildcard_match("relp.example.com", "RELP.example.com"));
        assert!(!wildcard_match("relp.example.com", "relp.example.org"));
    }

    #[test]
    fn permitted_wildcards_work_both_ways() {
        let cert = vec!["c1.example.com".to_owned()];
        assert!(permitted(&cert, &["*.example.com".to_owned()]));
        assert!(!permitted(&cert, &["*.example.org".to_owned()]));
        let wildcard_cert = vec!["*.example.com".to_owned()];
        assert!(permitted(&wildcard_cert, &["relp.example.com".to_owned()]));
        assert!(!permitted(
            &wildcard_cert,
            &["a.relp.example.com".to_owned()]
        ));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(presented_names(b"").is_none());
        assert!(presented_names(&[0x30, 0x82, 0xff]).is_none());
    }
}
