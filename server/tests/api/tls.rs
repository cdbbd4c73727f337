//! HTTPS with PARLOR_TLS_CERT + PARLOR_TLS_KEY, with a certificate authority and a server
//! certificate this test makes (openssl), trusted by the test's own client only.

use std::{path::Path, process::Command};

use server::config::TlsFiles;

use crate::helpers::TestApp;

/// Makes `ca.pem`, and `cert.pem` + `key.pem` for 127.0.0.1 signed by it, in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=Parlor test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
}

/// The app served over HTTPS with a certificate made in the returned directory (its
/// `ca.pem` is the authority to trust).
async fn https_app() -> (tempfile::TempDir, TestApp) {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let files = TlsFiles {
        cert: certs.path().join("cert.pem"),
        key: certs.path().join("key.pem"),
    };
    let app = TestApp::spawn_with(move |c| {
        c.tls = Some(files);
        c.public_url = "https://127.0.0.1".into();
    })
    .await;
    (certs, app)
}

/// A client that trusts the certificates [`https_app`] made (in `certs`).
fn trusting(certs: &Path) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.pem")).unwrap()).unwrap();
    reqwest::Client::builder().add_root_certificate(ca)
}

#[tokio::test]
async fn the_server_speaks_https_with_the_configured_certificate() {
    let (certs, app) = https_app().await;
    let client = trusting(certs.path())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", app.addr.port());
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // Signing up over HTTPS: the session cookie is Secure.
    let response = client
        .post(format!("{base}/api/auth/sign_up"))
        .form(&[
            ("email", "tls@example.com"),
            ("display_name", "Tess"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    // Signing up over HTTPS: the session cookie is `__Host-` prefixed (the browser then
    // insists on Secure, Path=/ and no Domain) and Secure.
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-parlor_session="), "{cookie}");
    assert!(
        cookie.contains("; Path=/;") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("__Host-parlor_session=")
        .unwrap();
    let me = |cookie: String| {
        let client = &client;
        let url = format!("{base}/api/auth/session");
        async move {
            let response = client
                .post(url)
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .send()
                .await
                .unwrap();
            response.text().await.unwrap()
        }
    };
    assert!(me(format!("__Host-parlor_session={token}"))
        .await
        .contains("tls@example.com"));
    // The same token under the plain name (what a sibling subdomain or a plain-http page
    // could plant) is not a session over https.
    assert!(!me(format!("parlor_session={token}"))
        .await
        .contains("tls@example.com"));
    // Plain HTTP on the same port gets nowhere; a client that does not trust the certificate
    // refuses it.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/healthz", app.addr.port()))
            .await
            .is_err()
    );
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}

#[tokio::test]
async fn an_unusable_certificate_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let mut config = server::config::Config::for_tests(dir.path());
    config.tls = Some(TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    });
    let error = match server::startup::Application::build(config).await {
        Err(error) => error.to_string(),
        Ok(_) => panic!("started with a broken certificate"),
    };
    assert!(error.contains("PARLOR_TLS_CERT"), "{error}");
    assert!(error.contains("no certificate in"), "{error}");
}

/// Browsers offer HTTP/2 first in the handshake. The server speaks HTTP/1.1 only, so it must
/// pick that: had it agreed to h2, the browser would speak a protocol nothing answers.
#[tokio::test]
async fn a_client_offering_http2_first_as_browsers_do_gets_http1_and_an_answer() {
    use rustls_pki_types::{pem::PemObject, CertificateDer, ServerName};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{
        rustls::{crypto::ring, ClientConfig, RootCertStore},
        TlsConnector,
    };

    let (certs, app) = https_app().await;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(certs.path().join("ca.pem")).unwrap())
        .unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "the server agreed to a protocol it does not speak"
    );
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut response),
    )
    .await
    .expect("the server answers")
    .ok();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Pages over HTTPS render every time, many at once. The title's formatter read a signal
/// after the render, outside the request's reactive arena, which panicked the connection's
/// task for about one HTTPS page in ten (the browser saw an empty response).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_over_https_render_every_time_many_at_once() {
    use futures::StreamExt;
    let (certs, app) = https_app().await;
    // A new connection for each page, as many browsers opening the site.
    let client = trusting(certs.path())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/signup", app.addr.port());
    let pages = futures::stream::iter(0..200)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                match client.get(&url).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                }
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<u16>>()
        .await;
    let failed = pages.iter().filter(|status| **status != 200).count();
    assert_eq!(failed, 0, "{failed} of 200 pages failed");
}
