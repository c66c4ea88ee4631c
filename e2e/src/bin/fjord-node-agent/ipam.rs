//! Pod addresses: each Pod gets its own loopback address from this run's /24 block, so Pod
//! processes can bind the same ports as in a real cluster without colliding.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Allocator over `<block>.2` … `<block>.254`; `<block>.1` is the nodes' address.
#[derive(Debug)]
pub struct Ipam {
    prefix: [u8; 3],
    used: BTreeSet<u8>,
}

impl Ipam {
    /// `block` is three octets like `127.42.17`; it must lie in 127.0.0.0/8.
    pub fn new(block: &str) -> anyhow::Result<Self> {
        let addr: Ipv4Addr = format!("{block}.0")
            .parse()
            .map_err(|_| anyhow::anyhow!("bad --ip-block {block}"))?;
        let o = addr.octets();
        anyhow::ensure!(
            o[0] == 127,
            "--ip-block {block} is not a loopback block (127.x.y)"
        );
        Ok(Self {
            prefix: [o[0], o[1], o[2]],
            used: BTreeSet::new(),
        })
    }

    /// The nodes' address.
    pub fn node_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], self.prefix[2], 1)
    }

    /// A free address, lowest first; `None` when all 253 are taken.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let last = (2..=254u8).find(|n| !self.used.contains(n))?;
        self.used.insert(last);
        Some(Ipv4Addr::new(
            self.prefix[0],
            self.prefix[1],
            self.prefix[2],
            last,
        ))
    }

    /// Give an address back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip.octets()[3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_addresses_and_reuses_released_ones() {
        let mut ipam = Ipam::new("127.42.9").unwrap();
        assert_eq!(ipam.node_ip(), Ipv4Addr::new(127, 42, 9, 1));
        let a = ipam.allocate().unwrap();
        let b = ipam.allocate().unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(127, 42, 9, 2), Ipv4Addr::new(127, 42, 9, 3))
        );
        ipam.release(a);
        assert_eq!(ipam.allocate(), Some(a));
        for _ in 0..251 {
            ipam.allocate().unwrap();
        }
        assert_eq!(ipam.allocate(), None);
    }

    #[test]
    fn rejects_non_loopback_blocks() {
        assert!(Ipam::new("10.0.0").is_err());
        assert!(Ipam::new("127.0").is_err());
    }
}
