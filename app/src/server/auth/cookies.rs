//! Cookie names and `Set-Cookie` values. Every cookie is HttpOnly and SameSite=Lax. When the
//! site is served over https the names carry a prefix browsers enforce: `__Host-` (Secure,
//! `Path=/`, no `Domain`) so that neither a sibling subdomain nor a plain-http page can set or
//! shadow the cookie, and `__Secure-` for the one cookie scoped to a narrower path.

/// A cookie: its plain name (http, development) and how it is scoped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    plain: &'static str,
    prefixed: &'static str,
    path: &'static str,
}

/// The signed-in user's session token.
pub const SESSION: Cookie = Cookie::site("parlor_session", "__Host-parlor_session");
/// A guest's identity (strangers, codes).
pub const GUEST: Cookie = Cookie::site("parlor_guest", "__Host-parlor_guest");
/// A Google identity waiting for the password of the account with its email.
pub const GOOGLE_LINK: Cookie = Cookie::site("parlor_google_link", "__Host-parlor_google_link");
/// The state and PKCE verifier of a Google sign-in under way, sent back only to its callback.
pub const OAUTH_FLOW: Cookie = Cookie {
    plain: "parlor_oauth",
    prefixed: "__Secure-parlor_oauth",
    path: "/auth/google",
};

impl Cookie {
    const fn site(plain: &'static str, prefixed: &'static str) -> Self {
        Self {
            plain,
            prefixed,
            path: "/",
        }
    }

    /// The name this cookie goes by: prefixed when `secure` (https).
    pub fn name(self, secure: bool) -> &'static str {
        if secure {
            self.prefixed
        } else {
            self.plain
        }
    }

    /// The `Set-Cookie` value storing `value` for `max_age` seconds.
    pub fn set(self, value: &str, max_age: u64, secure: bool) -> String {
        format!(
            "{}={value}; Path={}; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            self.name(secure),
            self.path,
            if secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value removing this cookie.
    pub fn remove(self, secure: bool) -> String {
        self.set("", 0, secure)
    }

    /// This cookie's value in one `Cookie` request header, if present.
    pub fn read(self, header: &str, secure: bool) -> Option<&str> {
        let name = self.name(secure);
        header.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }

    /// This cookie's (non-empty) value among a request's `Cookie` headers.
    pub fn from_headers(self, headers: &axum::http::HeaderMap, secure: bool) -> Option<String> {
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| self.read(v, secure))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Whether a `Set-Cookie` value sets or removes this cookie.
    pub fn is_set_by(self, set_cookie: &[u8], secure: bool) -> bool {
        set_cookie.starts_with(format!("{}=", self.name(secure)).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_https_site_cookies_are_host_prefixed_and_secure() {
        let cookie = SESSION.set("t", 60, true);
        assert_eq!(
            cookie,
            "__Host-parlor_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        // The browser enforces the prefix: Secure, Path=/ and no Domain.
        for c in [SESSION, GUEST, GOOGLE_LINK] {
            let set = c.set("v", 1, true);
            assert!(set.starts_with("__Host-"), "{set}");
            assert!(
                set.contains("; Path=/;") && set.ends_with("; Secure"),
                "{set}"
            );
            assert!(!set.to_lowercase().contains("domain"), "{set}");
        }
        let flow = OAUTH_FLOW.set("v", 1, true);
        assert!(flow.starts_with("__Secure-parlor_oauth=v; Path=/auth/google;"));
        assert!(flow.ends_with("; Secure"), "{flow}");
    }

    #[test]
    fn over_http_names_are_plain_and_not_secure() {
        assert_eq!(
            GUEST.remove(false),
            "parlor_guest=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn reading_matches_the_exact_name_for_the_scheme() {
        let header = "a=1; parlor_session=plain; __Host-parlor_session=host";
        assert_eq!(SESSION.read(header, false), Some("plain"));
        assert_eq!(SESSION.read(header, true), Some("host"));
        // Over https an unprefixed cookie (settable by a subdomain or plain http) is ignored.
        assert_eq!(SESSION.read("parlor_session=x", true), None);
        assert_eq!(GUEST.read(header, false), None);
    }
}
