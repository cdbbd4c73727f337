//! Rules for what users type into account forms. Shared by the browser and the server; the
//! server always applies them, whatever the browser did.

use crate::error::FieldError;

pub const MAX_EMAIL: usize = 254;
pub const MAX_DISPLAY_NAME: usize = 50;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;

/// A plausible email address, trimmed: one `@`, a non-empty local part, a dotted domain, no
/// spaces or control characters. (Ownership is what Google sign-in verifies; we don't mail.)
pub fn email(input: &str) -> Result<String, FieldError> {
    let email = input.trim();
    let err = |m: &str| Err(FieldError::new("email", m));
    if email.is_empty() {
        return err("Enter your email address.");
    }
    if email.chars().count() > MAX_EMAIL {
        return err("That email address is too long.");
    }
    let valid = match email.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.chars().count() <= 64
                && !local.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        return err("Enter a valid email address, like name@example.com.");
    }
    Ok(email.to_string())
}

/// A display name, trimmed: 1 to 50 characters, no control characters.
pub fn display_name(input: &str) -> Result<String, FieldError> {
    let name = input.trim();
    let err = |m: String| Err(FieldError::new("display_name", m));
    if name.is_empty() {
        return err("Enter a display name.".into());
    }
    if name.chars().count() > MAX_DISPLAY_NAME {
        return err(format!("Use at most {MAX_DISPLAY_NAME} characters."));
    }
    if name.chars().any(char::is_control) {
        return err("Use letters, digits, spaces and punctuation only.".into());
    }
    Ok(name.to_string())
}

/// A new password for `field`: 8 to 128 characters (any, spaces included, never trimmed).
pub fn new_password(input: &str, field: &str) -> Result<(), FieldError> {
    let n = input.chars().count();
    if n < MIN_PASSWORD {
        return Err(FieldError::new(
            field,
            format!("Use at least {MIN_PASSWORD} characters."),
        ));
    }
    if n > MAX_PASSWORD {
        return Err(FieldError::new(
            field,
            format!("Use at most {MAX_PASSWORD} characters."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Ann@Example.com ").unwrap(), "Ann@Example.com");
        assert_eq!(email("josé@exämple.de").unwrap(), "josé@exämple.de");
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@.com",
            "ann@example.com.",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(10_000))).is_err());
        assert!(email("x'; DROP TABLE users;--@example.com").is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("  Zoë 🌈 ").unwrap(), "Zoë 🌈");
        assert!(display_name("").is_err());
        assert!(display_name(&"x".repeat(51)).is_err());
        assert!(display_name(&"é".repeat(50)).is_ok());
        assert!(display_name("a\u{0}b").is_err());
        assert_eq!(
            display_name("<script>alert(1)</script>").unwrap(),
            "<script>alert(1)</script>"
        );
    }

    #[test]
    fn passwords() {
        assert!(new_password("short", "password").is_err());
        assert!(new_password("        ", "password").is_ok());
        assert!(new_password("pässwörd", "password").is_ok());
        assert!(new_password(&"x".repeat(129), "password").is_err());
        assert_eq!(
            new_password("", "new_password").unwrap_err().field,
            "new_password"
        );
    }
}
