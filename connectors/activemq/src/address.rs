//! The broker's address: `stomp://[login[:passcode]@]host:port[/virtual-host]`.

use crate::error::ActiveMqError;

/// Where the broker is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Address {
    /// `host:port`, to connect to.
    pub(crate) host_port: String,
    /// The `host` header of `CONNECT` (the virtual host; the host name by default).
    pub(crate) virtual_host: String,
    pub(crate) login: Option<String>,
    pub(crate) passcode: Option<String>,
    /// The address as messages show it: without passcode.
    pub(crate) shown: String,
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Address {
    /// Parses `stomp://[login[:passcode]@]host:port[/virtual-host]`.
    ///
    /// # Errors
    /// [`ActiveMqError::Config`] for another scheme or without host and port.
    pub(crate) fn parse(url: &str) -> Result<Address, ActiveMqError> {
        let url = url.trim();
        let bad = |why: &str| {
            ActiveMqError::Config(format!(
                "the broker address `{}` {why}; write it as stomp://[user[:password]@]host:port[/virtual-host] and pass it with .url(..)",
                without_passcode(url)
            ))
        };
        let rest = url
            .strip_prefix("stomp://")
            .ok_or_else(|| bad("is not a stomp:// URL"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, hp)) => (Some(user), hp),
            None => (None, authority),
        };
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or_else(|| bad("has no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("needs a host and a port number"));
        }
        let (login, passcode) = match user {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((l, p)) => (Some(l.to_string()), Some(p.to_string())),
                None => (Some(u.to_string()), None),
            },
        };
        Ok(Address {
            host_port: host_port.to_string(),
            virtual_host: if path.is_empty() {
                host.to_string()
            } else {
                path.to_string()
            },
            login,
            passcode,
            shown: without_passcode(url),
        })
    }
}

/// `url` with the passcode (between `:` and `@` of the authority) replaced by `***`.
pub(crate) fn without_passcode(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end], &rest[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_never_show_passcodes() {
        let a = Address::parse("stomp://admin:secret@127.0.0.1:61613/broker1").unwrap();
        assert_eq!(a.host_port, "127.0.0.1:61613");
        assert_eq!(a.virtual_host, "broker1");
        assert_eq!(a.login.as_deref(), Some("admin"));
        assert_eq!(a.passcode.as_deref(), Some("secret"));
        assert_eq!(a.shown, "stomp://admin:***@127.0.0.1:61613/broker1");
        let b = Address::parse(" stomp://localhost:61613 ").unwrap();
        assert_eq!((b.virtual_host.as_str(), b.login), ("localhost", None));
        for bad in [
            "tcp://h:1",
            "stomp://h",
            "stomp://:1",
            "stomp://h:x",
            "stomp://u:pw@h",
        ] {
            let e = Address::parse(bad).unwrap_err().to_string();
            assert!(e.contains("stomp://[user[:password]@]host:port"), "{e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }
}
