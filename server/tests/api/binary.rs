//! The `parlor` binary itself: invalid or impossible settings stop it with one clear message
//! and a non-zero status (never a panic), and SIGTERM stops it cleanly.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
    time::Duration,
};

/// Runs `parlor` in `dir` with only the given variables set (plus PATH), and waits for it.
fn run_parlor(dir: &Path, vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parlor"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_timeout(child, Duration::from_secs(20))
}

fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "parlor did not exit within {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a started `parlor`'s log (its stderr, piped) until it names the address it listens
/// on. The rest of the log is read on in the background (so it never blocks writing it) and
/// is what the returned thread gives once the process closed it.
pub fn listening(
    child: &mut std::process::Child,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("parlor exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().to_string();
        }
    };
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (addr, rest)
}

/// Asserts a failed start: non-zero exit, the expected message, no panic or backtrace.
fn assert_fails_with(output: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic in stderr: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint in stderr: {stderr}"
    );
}

#[test]
fn a_malformed_address_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_parlor(dir.path(), &[("PARLOR_ADDR", "not-an-address")]);
    assert_fails_with(
        &output,
        2,
        "parlor: configuration error: invalid PARLOR_ADDR=\"not-an-address\": expected an IP address and port",
    );
}

#[test]
fn a_malformed_log_filter_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_parlor(dir.path(), &[("PARLOR_LOG", "info,[broken")]);
    assert_fails_with(&output, 2, "invalid PARLOR_LOG=");
}

#[test]
fn settings_are_read_from_a_dot_env_file_and_a_malformed_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "PARLOR_ADDR=bogus\n").unwrap();
    let output = run_parlor(dir.path(), &[]);
    assert_fails_with(&output, 2, "invalid PARLOR_ADDR=\"bogus\"");

    std::fs::write(dir.path().join(".env"), "PARLOR_ADDR='unterminated\n").unwrap();
    let output = run_parlor(dir.path(), &[]);
    assert_fails_with(&output, 2, "cannot read the .env file");
}

#[test]
fn production_without_a_session_secret_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_parlor(dir.path(), &[("PARLOR_ENV", "production")]);
    assert_fails_with(&output, 2, "PARLOR_SESSION_SECRET is not set");
    let output = run_parlor(
        dir.path(),
        &[
            ("PARLOR_ENV", "production"),
            ("PARLOR_SESSION_SECRET", "tiny"),
        ],
    );
    assert_fails_with(&output, 2, "invalid PARLOR_SESSION_SECRET=\"[redacted]\"");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("tiny"));
}

#[test]
fn a_data_directory_that_cannot_be_created_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // A path below a regular file cannot be a directory, even for root.
    std::fs::write(dir.path().join("file"), "").unwrap();
    let output = run_parlor(
        dir.path(),
        &[
            ("PARLOR_DATA_DIR", "file/data"),
            ("PARLOR_ADDR", "127.0.0.1:0"),
        ],
    );
    assert_fails_with(
        &output,
        1,
        "cannot create the data directory file/data (PARLOR_DATA_DIR)",
    );
}

#[test]
fn a_database_path_that_cannot_be_opened_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // The database file's place is taken by a directory.
    std::fs::create_dir_all(dir.path().join("data/parlor.db")).unwrap();
    let output = run_parlor(dir.path(), &[("PARLOR_ADDR", "127.0.0.1:0")]);
    assert_fails_with(&output, 1, "cannot open the database data/parlor.db");
}

#[test]
fn a_tls_certificate_without_its_key_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_parlor(
        dir.path(),
        &[
            ("PARLOR_ADDR", "127.0.0.1:0"),
            ("PARLOR_TLS_CERT", "cert.pem"),
        ],
    );
    assert_fails_with(&output, 2, "PARLOR_TLS_KEY is not set");
}

#[test]
fn a_session_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("data/session.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run_parlor(dir.path(), &[("PARLOR_ADDR", "127.0.0.1:0")]);
    assert_fails_with(
        &output,
        1,
        "cannot use the session key file data/session.key: other users may read it (mode 644)",
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains(&"ab".repeat(32)));
    // Made private, the same key is used.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_parlor"))
        .current_dir(dir.path())
        .env_clear()
        .env("PARLOR_ADDR", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("listening on"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started);
}

#[test]
fn a_port_in_use_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run_parlor(dir.path(), &[("PARLOR_ADDR", &addr)]);
    assert_fails_with(
        &output,
        1,
        &format!("cannot listen on {addr} (PARLOR_ADDR): the address is already in use"),
    );
}

#[test]
fn the_server_starts_creates_its_data_directory_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_parlor"))
        .current_dir(dir.path())
        .env_clear()
        .env("PARLOR_ADDR", "127.0.0.1:0")
        .env("PARLOR_DATA_DIR", "nested/data")
        .env("PARLOR_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let (addr, log) = listening(&mut child);
    assert!(dir.path().join("nested/data/parlor.db").exists());
    // Everything in the data directory is the service user's alone.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("nested/data"), 0o700);
        assert_eq!(mode("nested/data/parlor.db"), 0o600);
        assert_eq!(mode("nested/data/session.key"), 0o600);
    }
    // Small pages only (`server::memory`): the kernel says so for the process.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    assert!(
        status.lines().any(|l| l == "THP_enabled:\t0"),
        "transparent huge pages still on: {status}"
    );

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Sign up over plain HTTP; nothing secret may reach the log.
    let password = "pa55word-that-must-not-be-logged";
    let body = format!("email=log%40example.com&display_name=Log&password={password}");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /api/auth/sign_up HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.contains("parlor_session="), "{response}");
    let token = response
        .split("parlor_session=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let rest = log.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}; log: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "log: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("account created")),
        "log: {rest:?}"
    );
    let log = rest.join("\n");
    for secret in [password, "argon2", token.as_str()] {
        assert!(!log.contains(secret), "{secret:?} in the log: {log}");
    }
}
