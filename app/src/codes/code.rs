//! The code people read to each other: the room's digits (what the server minted) followed by
//! four secret digits the creator's browser picked and never sends, shown grouped
//! (`482 913 7150`) and parsed back from whatever a person types or a link carries.

/// How many secret digits follow the room's digits.
pub const SECRET_DIGITS: usize = 4;

/// A whole code: the room's digits and the secret ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullCode {
    /// What the server knows and redeems (4 to 8 digits).
    pub room: String,
    /// What only the two people know.
    pub secret: String,
}

impl FullCode {
    /// A code from the room's digits and four random ones.
    pub fn new(room: &str, random: u32) -> Self {
        Self {
            room: room.to_string(),
            secret: format!("{:04}", random % 10_000),
        }
    }

    /// Parses what someone typed: digits with any spaces, dashes or dots between them.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let mut digits = String::new();
        for c in input.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '\u{a0}' | '\t' => {}
                _ => return Err("A code has digits only."),
            }
        }
        if digits.is_empty() {
            return Err("Type the code you were given.");
        }
        let room_len = digits.len().saturating_sub(SECRET_DIGITS);
        if !(4..=8).contains(&room_len) {
            return Err("That code is not complete: it has 10 digits, like 482 913 7150.");
        }
        let (room, secret) = digits.split_at(room_len);
        Ok(Self {
            room: room.to_string(),
            secret: secret.to_string(),
        })
    }

    /// All the digits, as the PAKE's password and in a link's fragment.
    pub fn digits(&self) -> String {
        format!("{}{}", self.room, self.secret)
    }

    /// Grouped for reading aloud: the room's digits in threes, then the secret four.
    pub fn grouped(&self) -> String {
        let mut out = String::new();
        let room = self.room.as_bytes();
        // Threes from the left; a 4- or 8-digit room ends with a group of one or two.
        for (i, chunk) in room.chunks(3).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        }
        out.push(' ');
        out.push_str(&self.secret);
        out
    }

    /// The link to share: the code travels in the fragment, which browsers never send.
    pub fn link(&self, origin: &str) -> String {
        format!("{origin}/code#{}", self.digits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_parsed_back_from_what_people_type() {
        let code = FullCode::new("482913", 7150);
        assert_eq!(code.grouped(), "482 913 7150");
        assert_eq!(code.digits(), "4829137150");
        for typed in [
            "482 913 7150",
            "4829137150",
            "482-913-7150",
            " 482.913 7150 ",
        ] {
            assert_eq!(FullCode::parse(typed), Ok(code.clone()), "{typed}");
        }
        assert_eq!(FullCode::new("0042", 7).grouped(), "004 2 0007");
        assert_eq!(
            FullCode::parse("004 2 0007").unwrap(),
            FullCode::new("0042", 7)
        );
    }

    #[test]
    fn bad_codes_say_what_is_wrong() {
        assert_eq!(FullCode::parse(""), Err("Type the code you were given."));
        assert!(FullCode::parse("482913").unwrap_err().contains("10 digits"));
        assert!(FullCode::parse("1234567890123")
            .unwrap_err()
            .contains("10 digits"));
        assert_eq!(
            FullCode::parse("482x9137150"),
            Err("A code has digits only.")
        );
        assert_eq!(
            FullCode::parse("४८२९१३७१५०"),
            Err("A code has digits only.")
        );
    }

    #[test]
    fn the_link_keeps_the_code_in_the_fragment() {
        let code = FullCode::new("482913", 7150);
        assert_eq!(
            code.link("https://parlor.example"),
            "https://parlor.example/code#4829137150"
        );
    }
}
