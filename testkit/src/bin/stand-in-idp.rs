//! Runs the stand-in identity provider for browser tests: `stand-in-idp 127.0.0.1:3101`.

use std::net::SocketAddr;

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3101".into())
        .parse()
        .unwrap_or_else(|_| {
            eprintln!("usage: stand-in-idp <ip:port>");
            std::process::exit(2)
        });
    match testkit::idp::spawn(addr).await {
        Ok(bound) => println!("stand-in identity provider on http://{bound}"),
        Err(e) => {
            eprintln!("stand-in-idp: cannot listen on {addr}: {e}");
            std::process::exit(1)
        }
    }
    std::future::pending::<()>().await;
}
