//! Property tests over every decoder of client input: socket frames of any shape (random
//! text, JSON with a known `type` and random fields, well-typed messages with any values,
//! binary) and any arguments to every registered server function. Whatever arrives, the server
//! answers with a clear error (or does what a valid request asks), never panics or answers
//! 500, and keeps serving: the same socket answers a ping afterwards, the same server serves
//! the next request.

use std::time::Duration;

use app::{
    protocol::{close, ClientMsg, ServerMsg},
    wire::CallId,
};
use futures::{SinkExt, StreamExt};
use proptest::{
    prelude::*,
    test_runner::{Config as Cases, TestRunner},
};
use serde_json::{Map, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::{helpers::TestApp, people::Person};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn cases(n: u32) -> TestRunner {
    TestRunner::new(Cases {
        cases: n,
        failure_persistence: None,
        ..Cases::default()
    })
}

/// Ids near the real ones (1, 2, …) as well as anywhere in range.
fn id() -> impl Strategy<Value = i64> {
    prop_oneof![-3i64..6, any::<i64>()]
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        id().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

const TYPES: &[&str] = &[
    "ping",
    "resume",
    "send",
    "typing",
    "receipt",
    "call_start",
    "call_accept",
    "call_reject",
    "call_hangup",
    "call_signal",
    "call_resume",
    "welcome",
    "error",
    "",
];

const FIELDS: &[&str] = &[
    "after",
    "conversation_id",
    "client_id",
    "body",
    "delivered_up_to",
    "read_up_to",
    "request_id",
    "to",
    "video",
    "call_id",
    "data",
];

/// A JSON object with a known (or nearly known) `type` and random fields.
fn typed_object() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        prop::sample::select(FIELDS).prop_map(String::from),
        "[a-z_]{1,12}"
    ];
    (
        prop::sample::select(TYPES),
        prop::collection::vec((field, json()), 0..6),
    )
        .prop_map(|(kind, fields)| {
            let mut object: Map<String, Value> = fields.into_iter().collect();
            object.insert("type".into(), kind.into());
            Value::Object(object).to_string()
        })
}

fn call_id() -> impl Strategy<Value = CallId> {
    prop_oneof![Just(0u128), any::<u128>()].prop_map(CallId)
}

/// A well-typed message with any values.
fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        Just(ClientMsg::Ping),
        id().prop_map(|after| ClientMsg::Resume { after }),
        (id(), "\\PC{0,70}", any::<String>()).prop_map(|(conversation_id, client_id, body)| {
            ClientMsg::Send {
                conversation_id,
                client_id,
                body,
            }
        }),
        id().prop_map(|conversation_id| ClientMsg::Typing { conversation_id }),
        (id(), id(), id()).prop_map(|(conversation_id, delivered_up_to, read_up_to)| {
            ClientMsg::Receipt {
                conversation_id,
                delivered_up_to,
                read_up_to,
            }
        }),
        (any::<u32>(), id(), any::<bool>()).prop_map(|(request_id, to, video)| {
            ClientMsg::CallStart {
                request_id,
                to,
                video,
            }
        }),
        call_id().prop_map(|call_id| ClientMsg::CallAccept { call_id }),
        call_id().prop_map(|call_id| ClientMsg::CallReject { call_id }),
        call_id().prop_map(|call_id| ClientMsg::CallHangup { call_id }),
        (call_id(), any::<String>())
            .prop_map(|(call_id, data)| ClientMsg::CallSignal { call_id, data }),
        call_id().prop_map(|call_id| ClientMsg::CallResume { call_id }),
    ]
}

#[derive(Debug, Clone)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        any::<String>().prop_map(Frame::Text),
        "[{}\\[\\]\":,a-z0-9 .-]{0,48}".prop_map(Frame::Text),
        typed_object().prop_map(Frame::Text),
        client_msg().prop_map(|m| Frame::Text(serde_json::to_string(&m).unwrap())),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Frame::Binary),
    ]
}

type Ws = testkit::client::Ws;

async fn open(app: &TestApp, who: &Person) -> Ws {
    app.try_socket(Some(&who.cookie))
        .await
        .expect("socket opens")
        .ws
}

/// Sends `frame` then a ping, and reads until the pong: every frame in between must be a
/// server message. `Err` names what went wrong; `Ok(false)` when the server closed the socket
/// by policy (too many malformed frames), which is an answer too.
async fn answered(ws: &mut Ws, frame: &Frame) -> Result<bool, String> {
    let (message, mut pongs) = match frame {
        // A frame that is itself a ping is answered with a pong of its own.
        Frame::Text(text) => (
            Message::text(text.clone()),
            1 + usize::from(serde_json::from_str::<ClientMsg>(text).ok() == Some(ClientMsg::Ping)),
        ),
        Frame::Binary(bytes) => (Message::binary(bytes.clone()), 1),
    };
    ws.send(message).await.map_err(|e| format!("send: {e}"))?;
    let _ = ws.send(Message::text(r#"{"type":"ping"}"#)).await;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .map_err(|_| "no pong within 5 s".to_string())?;
        match next {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerMsg>(&text) {
                Ok(ServerMsg::Pong) => {
                    pongs -= 1;
                    if pongs == 0 {
                        return Ok(true);
                    }
                }
                Ok(_) => continue,
                Err(e) => return Err(format!("not a server message ({e}): {text}")),
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == close::POLICY => {
                return Ok(false)
            }
            other => return Err(format!("the socket ended: {other:?}")),
        }
    }
}

#[test]
fn socket_frames_of_any_shape_are_answered_and_the_socket_keeps_serving() {
    let rt = runtime();
    let (app, ann) = rt.block_on(async {
        let app = TestApp::spawn_with(|c| c.ws_messages_per_sec = 100_000).await;
        let (ann, _bob, _conversation) = app.pair().await;
        (app, ann)
    });
    // (The runner takes a `Fn`: the socket and the count live in cells.)
    let ws = std::cell::RefCell::new(rt.block_on(open(&app, &ann)));
    let policy_closes = std::cell::Cell::new(0);
    cases(400)
        .run(&frame(), |frame| {
            let served = rt.block_on(answered(&mut ws.borrow_mut(), &frame));
            match served {
                Ok(true) => {}
                // Closed after repeated malformed frames, as it should be: a new tab.
                Ok(false) => {
                    policy_closes.set(policy_closes.get() + 1);
                    *ws.borrow_mut() = rt.block_on(open(&app, &ann));
                }
                Err(why) => {
                    *ws.borrow_mut() = rt.block_on(open(&app, &ann));
                    return Err(TestCaseError::fail(format!("{frame:?}: {why}")));
                }
            }
            Ok(())
        })
        .unwrap();
    let policy_closes = policy_closes.get();
    // The policy close happens only after many malformed frames; most answers kept the
    // socket, and a valid message still works on a fresh one.
    assert!(policy_closes < 100, "{policy_closes} policy closes");
    rt.block_on(async {
        let mut tab = app.socket(&ann).await;
        tab.send(&ClientMsg::Ping).await;
        assert_eq!(tab.next().await, ServerMsg::Pong);
    });
}

/// Names argument fields of the real server functions, so random bodies reach their
/// validation, not only the decoder.
const KEYS: &[&str] = &[
    "query",
    "page",
    "user_id",
    "accept",
    "id",
    "conversation_id",
    "before",
    "email",
    "password",
    "display_name",
    "current_password",
    "new_password",
    "confirmation",
];

fn form_value() -> impl Strategy<Value = String> {
    prop_oneof![
        id().prop_map(|n| n.to_string()),
        Just(String::new()),
        "[0-9]{1,30}",
        "-?[0-9]{1,20}(\\.[0-9]+)?(e[0-9]{1,3})?",
        prop::sample::select(&["true", "false", "null", "[]", "{}", "%", "%zz"][..])
            .prop_map(String::from),
        any::<String>(),
        "[ -~]{0,300}",
        Just("x".repeat(70_000)),
    ]
}

#[derive(Debug, Clone)]
enum Body {
    Form(Vec<(String, String)>),
    Raw {
        content_type: Option<&'static str>,
        bytes: Vec<u8>,
    },
}

fn body() -> impl Strategy<Value = Body> {
    let key = prop_oneof![
        prop::sample::select(KEYS).prop_map(String::from),
        "[a-z_\\[\\]]{0,12}"
    ];
    prop_oneof![
        4 => prop::collection::vec((key, form_value()), 0..6).prop_map(Body::Form),
        1 => (
            prop::sample::select(
                &[
                    None,
                    Some("application/json"),
                    Some("application/x-www-form-urlencoded"),
                    Some("text/plain"),
                    Some("multipart/form-data"),
                ][..]
            ),
            prop::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(content_type, bytes)| Body::Raw { content_type, bytes }),
    ]
}

/// A body for a failure message: long values cut short.
fn shown(body: &Body) -> String {
    let text = format!("{body:?}");
    if text.len() > 300 {
        format!(
            "{}… ({} characters)",
            &text[..text.floor_char_boundary(300)],
            text.len()
        )
    } else {
        text
    }
}

/// What every error body may be: one of our error variants, small, without internals.
fn clear_error(status: u16, text: &str) -> Result<(), String> {
    if text.len() > 4096 {
        return Err(format!("{status}: an error body of {} bytes", text.len()));
    }
    for leak in ["panicked", "sqlx", "SQLITE", "stack backtrace", "thread '"] {
        if text.contains(leak) {
            return Err(format!("{status}: internals in {text}"));
        }
    }
    let value: Value =
        serde_json::from_str(text).map_err(|_| format!("{status}: not JSON: {text}"))?;
    let known = [
        "Invalid",
        "Unauthorized",
        "WrongCredentials",
        "ForeignOrigin",
        "RateLimited",
        "BadRequest",
        "NotFound",
        "Forbidden",
    ];
    let named = match &value {
        Value::String(name) => known.contains(&name.as_str()),
        Value::Object(fields) => fields.len() == 1 && known.iter().any(|k| fields.contains_key(*k)),
        _ => false,
    };
    if named {
        Ok(())
    } else {
        Err(format!("{status}: not one of our errors: {text}"))
    }
}

#[test]
fn every_server_function_answers_any_arguments_with_a_clear_error() {
    let rt = runtime();
    let (app, person) = rt.block_on(async {
        let app = TestApp::spawn_with(|c| {
            // Reach the decoders and validation, not only the limits.
            c.auth_attempts_per_ip = 100_000;
            c.auth_failures_per_account = 100_000;
            c.friend_changes_per_min = 100_000;
            c.searches_per_min = 100_000;
            c.searches_per_ip_per_min = 100_000;
            c.guests_per_ip = 100_000;
        })
        .await;
        let person = app.person("Fuzz").await;
        (app, person)
    });
    // Signing out would make every later call a plain 401.
    let mut paths: Vec<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .filter(|path| !path.contains("sign_out"))
        .collect();
    paths.sort_unstable();
    assert!(paths.len() >= 18, "{paths:?}");
    // No cookie jar: every request carries exactly the person's cookie.
    let client = reqwest::Client::new();
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    cases(500)
        .run(&(0..paths.len(), body()), |(index, body)| {
            let path = paths[index];
            let attempt = || async {
                let request = client.post(app.url(path)).header("cookie", &person.cookie);
                let request = match &body {
                    Body::Form(fields) => request.form(fields),
                    Body::Raw {
                        content_type,
                        bytes,
                    } => {
                        let request = request.body(bytes.clone());
                        match content_type {
                            Some(t) => request.header("content-type", *t),
                            None => request,
                        }
                    }
                };
                let response = request.send().await.ok()?;
                let status = response.status().as_u16();
                Some((status, response.text().await.unwrap_or_default()))
            };
            // A server may answer a large body before reading all of it and close the
            // connection (the client then sees a reset): once is fine, twice is not.
            let (status, text) = rt.block_on(async {
                match attempt().await {
                    Some(answer) => answer,
                    None => attempt().await.expect("the server answers"),
                }
            });
            *seen.borrow_mut().entry(status).or_default() += 1;
            let allowed = [200, 400, 401, 403, 404, 413, 415, 422, 429];
            prop_assert!(
                allowed.contains(&status),
                "{path}: status {status}: {text} (body {})",
                shown(&body)
            );
            if status >= 400 {
                clear_error(status, &text).map_err(|why| {
                    TestCaseError::fail(format!("{path}: {why} (body {})", shown(&body)))
                })?;
            }
            Ok(())
        })
        .unwrap();
    // The cases reached past the decoders: accepted calls, undecodable arguments, and
    // decoded ones that validation refused.
    let seen = seen.into_inner();
    for status in [200, 400] {
        assert!(seen.contains_key(&status), "no {status} among {seen:?}");
    }
    assert!(
        [401, 403, 404, 422].iter().any(|s| seen.contains_key(s)),
        "no refusal by validation among {seen:?}"
    );
    // Still serving, and the person still signed in.
    rt.block_on(async {
        assert_eq!(app.get("/healthz").await.status(), 200);
        let session = app.ok_as(&person, "/api/auth/session", &[]).await;
        // (Random arguments may well have renamed them: a valid request.)
        assert_eq!(session["user"]["id"], person.id, "{session}");
    });
}

#[tokio::test]
async fn probe_long_delete() {
    let app = TestApp::spawn().await;
    let person = app.person("Probe").await;
    let client = reqwest::Client::new();
    for n in [1usize, 3, 6, 20, 40] {
        let fields: Vec<(String, String)> = (0..n)
            .map(|i| {
                (
                    if i % 2 == 0 {
                        "confirmation".to_string()
                    } else {
                        format!("k{i}")
                    },
                    "x".repeat(70_000),
                )
            })
            .collect();
        let r = client
            .post(app.url("/api/account/delete"))
            .header("cookie", &person.cookie)
            .form(&fields)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        eprintln!("PROBE {n}: {status} {}", &text[..text.len().min(200)]);
    }
}

#[tokio::test]
async fn an_undecodable_argument_that_is_quoted_back_is_cut_short() {
    let app = TestApp::spawn().await;
    let person = app.person("Echo").await;
    // Two values under an empty key: the decoder's message quotes them.
    let huge = "x".repeat(70_000);
    let response = app
        .call_as(&person, "/api/account/delete", &[("", &huge), ("", &huge)])
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, 400, "{}", &text[..text.len().min(300)]);
    assert!(text.len() < 1024, "{} bytes back", text.len());
    clear_error(status, &text).unwrap();
}
