//! Word counts of text read from a TCP socket, updated per word.
//!
//! ```text
//! nc -lk 9999          # in one terminal, then type text
//! fjord run socket-wordcount --hostname localhost --port 9999
//! ```
//!
//! Flink's `SocketWindowWordCount` counts per 5-second window; this one keeps running
//! totals (the `windowed-counts` example counts per event-time window). The job ends when
//! the socket closes.

use fjord::{JobArgs, Result, StreamExecutionEnvironment};

/// Builds the socket word count job.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let host = args.get("hostname").unwrap_or("localhost");
    let port: u16 = args.get_parsed("port", 0)?;
    if port == 0 {
        return Err(fjord::FjordError::BadArguments(
            "missing --port <port>; start a server first, for example `nc -lk 9999`, then pass --port 9999".into(),
        ));
    }
    let counts = env
        .socket_text_stream(host, port)
        .flat_map(|line: String| crate::wordcount::tokenize(&line))
        .name("tokenizer")
        .key_by(|(word, _): &(String, u64)| word.clone())
        .sum::<1>()
        .name("counter");
    crate::emit(&counts, args, "word counts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn counts_words_from_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            c.write_all(b"a b a\nb a\n").unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        let args = JobArgs::parse([
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--output",
            out.to_str().unwrap(),
        ])
        .unwrap();
        build(&env, &args).unwrap();
        env.execute("socket wordcount").unwrap();
        server.join().unwrap();
        assert_eq!(
            crate::read_output(&out).unwrap(),
            vec!["(a,1)", "(b,1)", "(a,2)", "(b,2)", "(a,3)"]
        );
    }

    #[test]
    fn missing_port_is_a_clear_error() {
        let env = StreamExecutionEnvironment::new();
        let err = build(&env, &JobArgs::default()).unwrap_err().to_string();
        assert!(err.contains("missing --port"), "{err}");
    }
}
