//! Idle sockets held by a process of their own (`channel-bench --hold ADDR`), one holder per
//! server. The two servers' connects then alternate with both servers' sockets open (10 000
//! each would not fit in one process's open files), and each server's clients start from
//! the same state: a fresh process that has done nothing else.

use futures::StreamExt;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

/// The parent's end: tells the holder how many sockets to open and waits until they are.
pub struct Holder {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Holder {
    /// A holder for the server at `addr`, whose sockets cycle over `cookies` (empty for the
    /// floor; none holds a space).
    pub async fn start(addr: &str, cookies: &[String]) -> Self {
        let exe = std::env::current_exe().expect("the bench knows where it is");
        let mut child = Command::new(exe)
            .args(["--hold", addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the holder starts");
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        stdin
            .write_all(format!("{}\n", cookies.join(" ")).as_bytes())
            .await
            .expect("the holder reads its cookies");
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Opens `count` more sockets, cycling over the cookies from `offset`; returns once every
    /// one has had its welcome.
    pub async fn open(&mut self, count: usize, offset: usize) {
        self.stdin
            .write_all(format!("{count} {offset}\n").as_bytes())
            .await
            .expect("the holder is there");
        let answer = self.stdout.next_line().await.expect("the holder answers");
        assert_eq!(
            answer.as_deref(),
            Some("ok"),
            "the holder could not open its sockets (pid {})",
            self.child.id().unwrap_or(0)
        );
    }
}

/// The holder process: reads its cookies (one line), then opens sockets as asked (a line
/// `COUNT OFFSET` each time, 200 connects in flight at a time), reads them all (pings get
/// their pongs) and answers `ok` once they are open. Ends when its input does.
pub async fn serve(addr: &str) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let cookies: Vec<String> = match lines.next_line().await {
        Ok(Some(line)) => line.split(' ').map(String::from).collect(),
        _ => return,
    };
    let mut out = tokio::io::stdout();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut numbers = line
            .split(' ')
            .map(|n| n.parse::<usize>().expect("a number"));
        let (count, offset) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        let mut batch = futures::stream::FuturesUnordered::new();
        let open = |mut ws: crate::Ws| {
            tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
        };
        for i in 0..count {
            batch.push(crate::connect(addr, &cookies[(offset + i) % cookies.len()]));
            if batch.len() >= 200 {
                open(batch.next().await.expect("one in flight"));
            }
        }
        while let Some(ws) = batch.next().await {
            open(ws);
        }
        if out.write_all(b"ok\n").await.is_err() || out.flush().await.is_err() {
            return;
        }
    }
}
