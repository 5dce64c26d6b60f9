//! Addresses a delivery must not connect to: anything that is not a public unicast host.
//!
//! Webhook URLs are chosen by whoever creates a subscription, so without this check a
//! subscription could make the gateway POST to its own loopback services, the private
//! network behind it or the cloud metadata endpoint (169.254.169.254).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 blocks that are not public unicast, as (network, prefix length).
const FORBIDDEN_V4: [(Ipv4Addr, u32); 14] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),  // "this network", incl. unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8), // private
    (Ipv4Addr::new(100, 64, 0, 0), 10), // carrier-grade NAT
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, incl. cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12), // private
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, incl. broadcast
];

/// Global unicast, `2000::/3`: every public IPv6 address is in it. Outside it are
/// unspecified, loopback, IPv4-compatible, discard-only, unique-local (`fc00::/7`),
/// link-local (`fe80::/10`), site-local and multicast (`ff00::/8`) addresses.
const GLOBAL_UNICAST_V6: (Ipv6Addr, u32) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Blocks inside global unicast that are still no public host.
const FORBIDDEN_V6: [(Ipv6Addr, u32); 3] = [
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48), // benchmarking
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

/// Whether a delivery must refuse to connect to `ip`: loopback, private, link-local,
/// carrier-grade NAT, unspecified, broadcast, multicast, documentation, benchmarking and
/// reserved ranges, every IPv6 address outside global unicast (unique-local, link-local,
/// loopback…), and IPv6 forms that embed one of those IPv4
/// addresses (IPv4-mapped, NAT64, 6to4).
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    FORBIDDEN_V4.iter().any(|&(network, prefix)| {
        let mask = u32::MAX << (32 - prefix);
        ip & mask == u32::from(network)
    })
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    // These forms reach an IPv4 host, so that host decides.
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    !in_v6(ip, GLOBAL_UNICAST_V6) || FORBIDDEN_V6.iter().any(|&network| in_v6(ip, network))
}

fn in_v6(ip: Ipv6Addr, (network, prefix): (Ipv6Addr, u32)) -> bool {
    let mask = u128::MAX << (128 - prefix);
    u128::from(ip) & mask == u128::from(network)
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`)
/// or 6to4 (`2002:aabb:ccdd::/48`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        [0x2002, high, low, ..] => Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(ip: &str) -> bool {
        is_forbidden_address(ip.parse().unwrap())
    }

    /// Each IPv4 range: its first and last address, then the neighbours just outside.
    const V4_RANGES: [(&str, &str, &str, &str); 14] = [
        ("0.0.0.0", "0.255.255.255", "", "1.0.0.0"),
        ("10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"),
        (
            "100.64.0.0",
            "100.127.255.255",
            "100.63.255.255",
            "100.128.0.0",
        ),
        (
            "127.0.0.0",
            "127.255.255.255",
            "126.255.255.255",
            "128.0.0.0",
        ),
        (
            "169.254.0.0",
            "169.254.255.255",
            "169.253.255.255",
            "169.255.0.0",
        ),
        (
            "172.16.0.0",
            "172.31.255.255",
            "172.15.255.255",
            "172.32.0.0",
        ),
        ("192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0"),
        ("192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0"),
        (
            "192.168.0.0",
            "192.168.255.255",
            "192.167.255.255",
            "192.169.0.0",
        ),
        (
            "198.18.0.0",
            "198.19.255.255",
            "198.17.255.255",
            "198.20.0.0",
        ),
        (
            "198.51.100.0",
            "198.51.100.255",
            "198.51.99.255",
            "198.51.101.0",
        ),
        (
            "203.0.113.0",
            "203.0.113.255",
            "203.0.112.255",
            "203.0.114.0",
        ),
        ("224.0.0.0", "239.255.255.255", "223.255.255.255", ""),
        ("240.0.0.0", "255.255.255.255", "", ""),
    ];

    #[test]
    fn every_ipv4_range_is_forbidden_up_to_its_boundaries_and_no_further() {
        for (first, last, before, after) in V4_RANGES {
            assert!(forbidden(first), "{first}");
            assert!(forbidden(last), "{last}");
            // Blank neighbours fall in an adjacent forbidden range or outside IPv4.
            if !before.is_empty() {
                assert!(!forbidden(before), "{before}");
            }
            if !after.is_empty() {
                assert!(!forbidden(after), "{after}");
            }
        }
    }

    #[test]
    fn the_named_special_ipv4_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "255.255.255.255",
            "0.0.0.0",
            "10.1.2.3",
        ] {
            assert!(forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.0.1",
            "223.255.255.255",
        ] {
            assert!(!forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_outside_global_unicast_is_forbidden_including_the_named_ranges() {
        for ip in [
            "::",
            "::1",
            "::ffff:ffff",
            "64:ff9b:1::1",
            "100::1",
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "4000::",
            "fbff:ffff::1",
            "fc00::",
            "fd12:3456::1",
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::",
            "fe80::1",
            "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fec0::1",
            "ff00::",
            "ff02::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn global_unicast_ipv6_is_allowed_from_its_first_to_its_last_address() {
        for ip in [
            "2000::",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "3fff:1000::",
            "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(!forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn ipv6_documentation_and_benchmarking_blocks_are_forbidden_up_to_their_boundaries() {
        for (first, last, before, after) in [
            (
                "2001:2::",
                "2001:2:0:ffff:ffff:ffff:ffff:ffff",
                "2001:1:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:2:1::",
            ),
            (
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:db9::",
            ),
            (
                "3fff::",
                "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
                "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "3fff:1000::",
            ),
        ] {
            assert!(forbidden(first), "{first}");
            assert!(forbidden(last), "{last}");
            assert!(!forbidden(before), "{before}");
            assert!(!forbidden(after), "{after}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        for (ip, expected) in [
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:192.168.1.1", true),
            ("::ffff:8.8.8.8", false),
            ("64:ff9b::10.0.0.1", true),
            ("64:ff9b::1.1.1.1", false),
            ("2002:7f00:1::", true),
            ("2002:a9fe:a9fe::1", true),
            ("2002:808:808::", false),
            // IPv4-compatible addresses are deprecated: refused whatever they embed.
            ("::8.8.8.8", true),
        ] {
            assert_eq!(forbidden(ip), expected, "{ip}");
        }
    }
}
