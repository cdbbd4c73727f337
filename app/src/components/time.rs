//! Timestamps for people: the server sends RFC 3339 in UTC, the browser shows them in the
//! reader's time zone and language. These pages load their data in the browser, so the
//! server-side fallback (the raw timestamp) is never what a user sees.

/// "14:05" today, otherwise a short date and time.
pub fn short(rfc3339: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsValue;
        let date = js_sys::Date::new(&JsValue::from_str(rfc3339));
        if date.get_time().is_nan() {
            return rfc3339.to_string();
        }
        let today = js_sys::Date::new_0().to_date_string() == date.to_date_string();
        let options = js_sys::Object::new();
        let set = |k: &str, v: &str| {
            let _ = js_sys::Reflect::set(&options, &k.into(), &v.into());
        };
        set("hour", "2-digit");
        set("minute", "2-digit");
        if !today {
            set("month", "short");
            set("day", "numeric");
        }
        date.to_locale_string("default", &options).into()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        rfc3339.to_string()
    }
}

/// "just now", "5 min ago", "3 h ago", or a date.
pub fn ago(rfc3339: &str) -> String {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsValue;
        let then = js_sys::Date::new(&JsValue::from_str(rfc3339)).get_time();
        if then.is_nan() {
            return rfc3339.to_string();
        }
        let minutes = ((js_sys::Date::now() - then) / 60_000.0).max(0.0) as i64;
        match minutes {
            0 => "just now".into(),
            1..=59 => format!("{minutes} min ago"),
            60..=1439 => format!("{} h ago", minutes / 60),
            _ => short(rfc3339),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        rfc3339.to_string()
    }
}
