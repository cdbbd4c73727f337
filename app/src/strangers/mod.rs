//! Talk to a stranger: random matching over the `/ws` socket (`stranger_*` messages of
//! `crate::protocol`), for guests and signed-in users alike, anonymous to each other. The
//! server's side is `crate::server::strangers`; here are the rules both sides check
//! (interests, chat lines, report reasons) and the page ([`page`]).

pub mod moderation;
pub mod moderation_page;
pub mod page;
pub mod preview;

use serde::{Deserialize, Serialize};

/// The most interests one person may give.
pub const MAX_INTERESTS: usize = 10;
/// The longest interest, in characters.
pub const MAX_INTEREST_CHARS: usize = 30;
/// The longest chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 1000;
/// The longest note a report may carry, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;
/// How long someone with interests waits for a shared one before anyone will do (seconds).
pub const WIDEN_AFTER_SECS: u64 = 8;

/// Interests as typed (`"Chess,  jazz "` or one per entry) made comparable: trimmed,
/// inner spaces collapsed, lower case, duplicates dropped, order kept. Refuses more than
/// [`MAX_INTERESTS`] or one longer than [`MAX_INTEREST_CHARS`], or one with control
/// characters, saying which.
pub fn normalize_interests<S: AsRef<str>>(raw: &[S]) -> Result<Vec<String>, String> {
    let mut interests: Vec<String> = Vec::new();
    for tag in raw.iter().flat_map(|s| s.as_ref().split(',')) {
        let tag = tag.split_whitespace().collect::<Vec<_>>().join(" ");
        if tag.is_empty() {
            continue;
        }
        if tag.chars().any(|c| c.is_control() || is_invisible(c)) {
            return Err("An interest cannot contain control or invisible characters.".into());
        }
        let chars = tag.chars().count();
        if chars > MAX_INTEREST_CHARS {
            return Err(format!(
                "An interest can have at most {MAX_INTEREST_CHARS} characters (“{}…” has {chars}).",
                tag.chars().take(12).collect::<String>()
            ));
        }
        let tag = tag.to_lowercase();
        if !interests.contains(&tag) {
            interests.push(tag);
        }
        if interests.len() > MAX_INTERESTS {
            return Err(format!("You can give at most {MAX_INTERESTS} interests."));
        }
    }
    Ok(interests)
}

/// Bidirectional overrides and zero-width characters: they would let a label look like
/// something else.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A chat line to relay (trimmed), or why not.
pub fn check_chat(text: &str) -> Result<&str, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("A message cannot be empty.".into());
    }
    let chars = text.chars().count();
    if chars > MAX_CHAT_CHARS {
        return Err(format!(
            "A message can have at most {MAX_CHAT_CHARS} characters (this one has {chars})."
        ));
    }
    Ok(text)
}

/// Why someone is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Nudity,
    Harassment,
    Hate,
    Minor,
    Spam,
    Violence,
    Other,
}

impl ReportReason {
    pub const ALL: [ReportReason; 7] = [
        Self::Nudity,
        Self::Harassment,
        Self::Hate,
        Self::Minor,
        Self::Spam,
        Self::Violence,
        Self::Other,
    ];

    /// What the reason list says.
    pub fn label(self) -> &'static str {
        match self {
            Self::Nudity => "Nudity or sexual content",
            Self::Harassment => "Harassment or bullying",
            Self::Hate => "Hate speech",
            Self::Minor => "Seems to be under 18",
            Self::Spam => "Spam or advertising",
            Self::Violence => "Violence or threats",
            Self::Other => "Something else",
        }
    }

    /// The name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nudity => "nudity",
            Self::Harassment => "harassment",
            Self::Hate => "hate",
            Self::Minor => "minor",
            Self::Spam => "spam",
            Self::Violence => "violence",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Why a match ended, as the one still there is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchEnd {
    /// The stranger pressed Next: you are looking again already.
    Next,
    /// The stranger stopped or closed the page.
    Left,
    /// The stranger's connection did not come back.
    ConnectionLost,
    /// You started in another tab: this one stopped.
    OtherTab,
    /// The server instance that ran strangers stopped (with several instances): the looking
    /// or the match is gone with it; pressing Start looks again on the next one.
    ServerLost,
}

impl MatchEnd {
    pub fn text(self) -> &'static str {
        match self {
            Self::Next => "The stranger moved on.",
            Self::Left => "The stranger left.",
            Self::ConnectionLost => "The stranger's connection was lost.",
            Self::OtherTab => "You started talking to strangers in another tab.",
            Self::ServerLost => "The connection to the stranger was lost on our side.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interests_are_trimmed_lowered_split_and_deduplicated() {
        assert_eq!(
            normalize_interests(&["  Chess ,jazz", "JAZZ", "", " board   games "]).unwrap(),
            ["chess", "jazz", "board games"]
        );
        assert_eq!(
            normalize_interests::<&str>(&[]).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn too_many_too_long_or_invisible_interests_are_refused() {
        let eleven: Vec<String> = (0..11).map(|i| format!("tag{i}")).collect();
        assert!(normalize_interests(&eleven)
            .unwrap_err()
            .contains("at most 10"));
        let ten: Vec<String> = (0..10).map(|i| format!("tag{i}")).collect();
        assert_eq!(normalize_interests(&ten).unwrap().len(), 10);
        assert!(normalize_interests(&["x".repeat(31)])
            .unwrap_err()
            .contains("at most 30"));
        assert!(normalize_interests(&["é".repeat(30)]).is_ok());
        assert!(normalize_interests(&["a\u{202e}b"]).is_err());
        assert!(normalize_interests(&["a\u{7}b"]).is_err());
    }

    #[test]
    fn chat_lines_are_trimmed_and_bounded() {
        assert_eq!(check_chat("  hi "), Ok("hi"));
        assert!(check_chat("   ").is_err());
        assert!(check_chat(&"x".repeat(10_000))
            .unwrap_err()
            .contains("at most 1000"));
    }

    #[test]
    fn report_reasons_round_trip() {
        for reason in ReportReason::ALL {
            assert_eq!(ReportReason::parse(reason.as_str()), Some(reason));
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        assert_eq!(ReportReason::parse("nope"), None);
    }
}
