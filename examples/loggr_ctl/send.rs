//! `send`: one message, several, or a file's lines to a syslog receiver over TCP (LF or octet
//! counting, optionally TLS as in RFC 5425) or RELP (optionally TLS), printing what was sent and,
//! for RELP, what was acknowledged.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt as _;

use loggr::relp::tls::{load_certs, load_key, PeerAuth, TlsClientConfig, TlsClientOptions};

/// The `send` arguments.
#[derive(clap::Args)]
pub(crate) struct SendArgs {
    /// `host:port` of the receiver.
    #[arg(long, default_value = "127.0.0.1:2514")]
    target: String,
    /// `relp` (acknowledged: the count of `200` answers is printed) or `tcp` (no
    /// acknowledgements in the protocol).
    #[arg(long, default_value = "relp")]
    transport: Transport,
    /// TCP framing: `octet` (RFC 6587 octet counting; messages may hold newlines) or `lf`.
    #[arg(long, default_value = "octet")]
    framing: Framing,
    /// Send these lines as they are; by default a message that does not start with `<` is
    /// wrapped in an RFC 5424 header (`<13>1 TIMESTAMP HOST loggr_ctl - - - MESSAGE`).
    #[arg(long)]
    raw: bool,
    /// Read messages from this file, one per line (`-`: standard input).
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// Use TLS.
    #[arg(long)]
    tls: bool,
    /// CA certificates (PEM) the server's chain must lead to; without it the server's
    /// certificate is not checked (rsyslog's `anon` mode).
    #[arg(long, requires = "tls")]
    ca: Option<PathBuf>,
    /// Our certificate chain (PEM), for servers that ask for one.
    #[arg(long, requires_all = ["tls", "key"])]
    cert: Option<PathBuf>,
    /// Our private key (PEM).
    #[arg(long, requires_all = ["tls", "cert"])]
    key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the target's host).
    #[arg(long, requires = "tls")]
    server_name: Option<String>,
    /// Messages (each one message; use `--file` for many).
    messages: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Transport {
    Relp,
    Tcp,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Framing {
    Octet,
    Lf,
}

/// What was sent and acknowledged.
pub(crate) struct Sent {
    pub(crate) sent: u64,
    /// `None` over TCP.
    pub(crate) acked: Option<u64>,
}

fn messages(args: &SendArgs) -> anyhow::Result<Vec<String>> {
    let mut lines = args.messages.clone();
    if let Some(path) = &args.file {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        };
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    }
    if lines.is_empty() {
        bail!("nothing to send: give messages or --file");
    }
    if args.raw {
        return Ok(lines);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "-".into());
    let now = loggr::core::Timestamp::now();
    Ok(lines
        .into_iter()
        .map(|line| {
            if line.starts_with('<') {
                line
            } else {
                format!("<13>1 {now} {host} loggr_ctl - - - {line}")
            }
        })
        .collect())
}

fn tls_config(args: &SendArgs) -> anyhow::Result<TlsClientConfig> {
    let mut options = TlsClientOptions::default();
    if let Some(ca) = &args.ca {
        options.ca_certs = load_certs(ca)?;
        options.peer_auth = PeerAuth::Name(args.server_name.iter().cloned().collect());
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        options.client_cert = Some((load_certs(cert)?, load_key(key)?));
    }
    options.server_name.clone_from(&args.server_name);
    Ok(TlsClientConfig::new(options)?)
}

pub(crate) async fn send(args: &SendArgs) -> anyhow::Result<Sent> {
    let messages = messages(args)?;
    match args.transport {
        Transport::Relp => {
            let config = loggr::relp::ClientConfig {
                max_reconnects: Some(3),
                connect_timeout: Duration::from_secs(10),
                ..loggr::relp::ClientConfig::default()
            };
            let mut client = if args.tls {
                loggr::relp::Client::connect_tls(&args.target, config, tls_config(args)?).await
            } else {
                loggr::relp::Client::connect(&args.target, config).await
            }
            .with_context(|| format!("opening a RELP session with {}", args.target))?;
            for message in &messages {
                client.send(message.clone().into_bytes().into()).await?;
            }
            let stats = client.close().await?;
            Ok(Sent {
                sent: messages.len() as u64,
                acked: Some(stats.acked),
            })
        }
        Transport::Tcp => {
            let tcp = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::TcpStream::connect(&args.target),
            )
            .await
            .with_context(|| format!("connecting to {}", args.target))??;
            let mut stream: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if args.tls {
                Box::new(tls_config(args)?.connect(&args.target, tcp).await?)
            } else {
                Box::new(tcp)
            };
            let mut buffer = Vec::new();
            for message in &messages {
                match args.framing {
                    Framing::Octet => {
                        buffer.extend_from_slice(format!("{} ", message.len()).as_bytes());
                        buffer.extend_from_slice(message.as_bytes());
                    }
                    Framing::Lf => {
                        if message.contains('\n') {
                            bail!("a message holds a newline: use --framing octet");
                        }
                        buffer.extend_from_slice(message.as_bytes());
                        buffer.push(b'\n');
                    }
                }
            }
            stream.write_all(&buffer).await?;
            stream.flush().await?;
            stream.shutdown().await?;
            Ok(Sent {
                sent: messages.len() as u64,
                acked: None,
            })
        }
    }
}
