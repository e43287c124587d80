//! Port-forward over WebSocket: the ports come from the `port` query
//! parameters (repeated or comma-separated, each 1-65535); port `i` gets data
//! channel `2i` and error channel `2i + 1`, and the first message the server
//! sends on each of them is the port as a little-endian u16.

/// A channel's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Data,
    Error,
}

/// Bad `port` parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// no `port` parameter
    #[error("query parameter \"port\" is required")]
    Missing,
    /// not a port number
    #[error("unable to parse {0:?} as a port")]
    Invalid(String),
    /// more ports than channel numbers
    #[error("{0} ports requested, at most 127 fit in the channel numbers")]
    TooMany(usize),
}

/// The ports of one port-forward connection and their channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortChannels {
    ports: Vec<u16>,
}

impl PortChannels {
    /// Parses the `port` parameters of a URL query string.
    pub fn from_query(query: &str) -> Result<Self, PortError> {
        let mut ports = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key != "port" {
                continue;
            }
            if value.is_empty() {
                return Err(PortError::Invalid(String::new()));
            }
            for p in value.split(',') {
                match p.parse::<u16>() {
                    Ok(port) if port > 0 => ports.push(port),
                    _ => return Err(PortError::Invalid(p.to_owned())),
                }
            }
        }
        Self::new(ports)
    }

    /// The channels for `ports`, in order.
    pub fn new(ports: Vec<u16>) -> Result<Self, PortError> {
        match ports.len() {
            0 => Err(PortError::Missing),
            n if n > 127 => Err(PortError::TooMany(n)),
            _ => Ok(Self { ports }),
        }
    }

    /// The ports, in order.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// How many channels the connection has.
    pub fn channel_count(&self) -> usize {
        self.ports.len() * 2
    }

    /// The channel of port number `index`'s stream of `kind`.
    pub fn channel(&self, index: usize, kind: ChannelKind) -> Option<u8> {
        (index < self.ports.len()).then(|| {
            let base = (index * 2) as u8;
            match kind {
                ChannelKind::Data => base,
                ChannelKind::Error => base + 1,
            }
        })
    }

    /// The port and role of `channel`.
    pub fn lookup(&self, channel: u8) -> Option<(u16, ChannelKind)> {
        let port = *self.ports.get(usize::from(channel / 2))?;
        let kind = if channel & 1 == 0 {
            ChannelKind::Data
        } else {
            ChannelKind::Error
        };
        Some((port, kind))
    }
}

/// The payload of the first message on each of a port's channels.
pub fn port_prefix(port: u16) -> [u8; 2] {
    port.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_the_query() {
        let p = PortChannels::from_query("port=80&port=8080,9090&tty=false").unwrap();
        assert_eq!(p.ports(), [80, 8080, 9090]);
        assert_eq!(p.channel_count(), 6);
        assert_eq!(p.channel(1, ChannelKind::Data), Some(2));
        assert_eq!(p.channel(2, ChannelKind::Error), Some(5));
        assert_eq!(p.channel(3, ChannelKind::Data), None);
        assert_eq!(p.lookup(3), Some((8080, ChannelKind::Error)));
        assert_eq!(p.lookup(4), Some((9090, ChannelKind::Data)));
        assert_eq!(p.lookup(6), None);
    }

    #[test]
    fn bad_queries() {
        assert_eq!(PortChannels::from_query("x=1"), Err(PortError::Missing));
        assert_eq!(
            PortChannels::from_query("port="),
            Err(PortError::Invalid(String::new()))
        );
        assert_eq!(
            PortChannels::from_query("port=0"),
            Err(PortError::Invalid("0".into()))
        );
        assert_eq!(
            PortChannels::from_query("port=70000"),
            Err(PortError::Invalid("70000".into()))
        );
        assert_eq!(
            PortChannels::new(vec![1; 128]),
            Err(PortError::TooMany(128))
        );
    }

    #[test]
    fn prefix_is_little_endian() {
        assert_eq!(port_prefix(8080), [0x90, 0x1f]);
    }
}
