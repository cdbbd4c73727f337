//! The rendezvous API's wire types (`/rendezvous`, kept exactly as the clients written for
//! the seed's server speak it): room ids, sides, and the JSON bodies of minting and redeeming.

use serde::{Deserialize, Serialize};

/// A room's id: 128 random bits written as a UUID (version 4), `appID` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppId(pub u128);

impl AppId {
    /// A fresh random id, marked as a version 4 UUID.
    pub fn from_random(bits: u128) -> Self {
        Self((bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))
    }
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

impl std::str::FromStr for AppId {
    type Err = ();

    /// The canonical form only (hyphens where a UUID has them; either case).
    fn from_str(s: &str) -> Result<Self, ()> {
        let bytes = s.as_bytes();
        if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
            return Err(());
        }
        let hex: String = s.chars().filter(|&c| c != '-').collect();
        if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(());
        }
        u128::from_str_radix(&hex, 16).map(Self).map_err(|_| ())
    }
}

impl Serialize for AppId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One of a room's two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Self {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "A" => Some(Side::A),
            "B" => Some(Side::B),
            _ => None,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// `POST /rendezvous/code` answers this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minted {
    pub code: String,
    #[serde(rename = "appID")]
    pub app_id: AppId,
    /// RFC 3339, UTC.
    #[serde(rename = "expiresAt")]
    pub expires_at: String,
}

/// `POST /rendezvous/redeem` takes this.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RedeemRequest {
    pub code: String,
}

/// ...and answers this, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redeemed {
    #[serde(rename = "appID")]
    pub app_id: AppId,
    #[serde(rename = "expiresAt")]
    pub expires_at: String,
}

/// A code as people type it: 4 to 8 digits.
pub fn valid_code(code: &str) -> bool {
    (4..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 3339 (UTC, seconds) of a time given in seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_are_version_4_uuids_and_parse_back() {
        let id = AppId::from_random(u128::MAX);
        let text = id.to_string();
        assert_eq!(text, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(text.parse::<AppId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<AppId>(), Ok(id));
        for bad in [
            "",
            "ffffffffffff4fffbfffffffffffffff",
            "ffffffff-ffff-4fff-bfff-fffffffffffg",
            "ffffffff-ffff-4fff-bfff-ffffffffffff0",
            "+fffffff-ffff-4fff-bfff-ffffffffffff",
        ] {
            assert!(bad.parse::<AppId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn codes_are_four_to_eight_digits() {
        assert!(valid_code("0000") && valid_code("12345678"));
        for bad in ["123", "123456789", "12a4", " 1234", "١٢٣٤"] {
            assert!(!valid_code(bad), "{bad}");
        }
    }
}
