//! The offers exchanged by `open` and its `rsp`: one `name[=value[,value…]]` per line.

use crate::RelpError;

/// The RELP protocol version this crate speaks: librelp (rsyslog) speaks 0 and aborts a
/// session whose server answers with a higher one.
pub(crate) const RELP_VERSION: u32 = 0;

/// One offer line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offer {
    pub(crate) name: String,
    pub(crate) values: Vec<String>,
}

/// Parses offer lines (empty lines are skipped).
pub(crate) fn parse(data: &[u8]) -> Result<Vec<Offer>, RelpError> {
    let text = std::str::from_utf8(data)
        .map_err(|_| RelpError::Offer("offers are not UTF-8".to_owned()))?;
    let mut offers = Vec::new();
    for line in text.split('\n').filter(|line| !line.is_empty()) {
        let (name, values) = match line.split_once('=') {
            Some((name, values)) => (name, values.split(',').map(str::to_owned).collect()),
            None => (line, Vec::new()),
        };
        if name.is_empty() {
            return Err(RelpError::Offer(format!("offer without a name: {line:?}")));
        }
        offers.push(Offer {
            name: name.to_owned(),
            values,
        });
    }
    Ok(offers)
}

/// Checks a client's offers (the DATA of `open`) and returns the server's, to be sent after
/// `200 OK\n`.
///
/// Mirrors librelp's `selectOffers`: unknown offers are ignored, `relp_version` must be a number
/// (we answer with the lower of it and ours), and the client must offer `syslog` (imrelp
/// requires it).
pub(crate) fn negotiate_server(client: &[u8], software: &str) -> Result<String, RelpError> {
    let offers = parse(client)?;
    let mut version = RELP_VERSION;
    let mut syslog = false;
    for offer in &offers {
        match offer.name.as_str() {
            "relp_version" => {
                let offered: u32 = offer
                    .values
                    .first()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| RelpError::Offer("invalid relp_version offer".to_owned()))?;
                version = version.min(offered);
            }
            "commands" => syslog |= offer.values.iter().any(|v| v == "syslog"),
            _ => {}
        }
    }
    if !syslog {
        return Err(RelpError::Offer(
            "required command not supported by client".to_owned(),
        ));
    }
    Ok(format!(
        "relp_version={version}\nrelp_software={software}\ncommands=syslog"
    ))
}

/// The client's offers, sent as DATA of `open`.
pub(crate) fn client_offers(software: &str) -> String {
    format!("relp_version={RELP_VERSION}\nrelp_software={software}\ncommands=syslog")
}

/// Checks the server's offers (the lines after `200 OK` in the `rsp` to `open`).
pub(crate) fn check_server(server: &[u8]) -> Result<(), RelpError> {
    let offers = parse(server)?;
    let mut syslog = false;
    for offer in &offers {
        match offer.name.as_str() {
            "relp_version" => {
                let version: u32 = offer
                    .values
                    .first()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| RelpError::Offer("invalid relp_version offer".to_owned()))?;
                if version > RELP_VERSION {
                    return Err(RelpError::Offer(format!(
                        "server speaks relp_version {version}, we speak {RELP_VERSION}"
                    )));
                }
            }
            "commands" => syslog |= offer.values.iter().any(|v| v == "syslog"),
            _ => {}
        }
    }
    if !syslog {
        return Err(RelpError::Offer("server does not offer syslog".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSYSLOG_OPEN: &[u8] =
        b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";

    #[test]
    fn parses_rsyslog_offers() {
        let offers = parse(RSYSLOG_OPEN).unwrap();
        assert_eq!(offers.len(), 3);
        assert_eq!(offers[1].name, "relp_software");
        assert_eq!(
            offers[1].values,
            ["librelp", "1.11.0", "http://librelp.adiscon.com"]
        );
    }

    #[test]
    fn server_answers_version_zero() {
        let reply = negotiate_server(RSYSLOG_OPEN, "x").unwrap();
        assert_eq!(reply, "relp_version=0\nrelp_software=x\ncommands=syslog");
        let reply = negotiate_server(b"relp_version=1\ncommands=syslog", "x").unwrap();
        assert!(reply.starts_with("relp_version=0\n"));
    }

    #[test]
    fn server_requires_syslog_and_a_numeric_version() {
        assert!(negotiate_server(b"relp_version=0\ncommands=foo", "x").is_err());
        assert!(negotiate_server(b"relp_version=zero\ncommands=syslog", "x").is_err());
        assert!(negotiate_server(b"relp_version\ncommands=syslog", "x").is_err());
    }

    #[test]
    fn client_refuses_newer_servers() {
        assert!(check_server(b"relp_version=0\nrelp_software=x\ncommands=syslog").is_ok());
        assert!(check_server(b"relp_version=1\ncommands=syslog").is_err());
        assert!(check_server(b"relp_version=0\n").is_err());
    }
}
