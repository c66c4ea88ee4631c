//! WordCount, as Flink's example: lowercase, split on non-word characters, emit a running
//! `(word,count)` update per word occurrence.
//!
//! ```text
//! fjord run wordcount --input <file or directory> [--output <path>]
//! ```
//!
//! Without `--input` it counts a built-in text (as Flink does). Non-word characters are
//! those outside `[A-Za-z0-9_]`, Java's `\W`, so the results equal Flink's.

use fjord::{BoxError, Collector, FlatMapFunction, JobArgs, Result, StreamExecutionEnvironment};

/// The default input: the opening of Hamlet's soliloquy, as in Flink's `WordCountData`.
pub const DEFAULT_TEXT: &[&str] = &[
    "To be, or not to be,--that is the question:--",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune",
    "Or to take arms against a sea of troubles,",
    "And by opposing end them?--To die,--to sleep,--",
    "No more; and by a sleep to say we end",
    "The heartache, and the thousand natural shocks",
    "That flesh is heir to,--'tis a consummation",
    "Devoutly to be wish'd. To die,--to sleep;--",
];

/// Splits a line into lowercase words the way Flink's `Tokenizer` does.
pub fn tokenize(line: &str) -> Vec<(String, u64)> {
    let mut words = Vec::new();
    for_each_word(line, |w| words.push((w, 1)));
    words
}

/// Calls `word` with each word of `line`, lowercased, in order: the words are the runs of
/// `[A-Za-z0-9_]` after lowercasing (Java's `\w`), as Flink's `Tokenizer` splits them.
pub fn for_each_word(line: &str, mut word: impl FnMut(String)) {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if line.is_ascii() {
        // Lowercasing ASCII maps each byte to one byte and keeps separators separators, so
        // each word is lowercased as it is copied out: one allocation per word, none for a
        // lowercased copy of the line. The split runs over bytes: a `char` predicate on a
        // `str` decodes every character first.
        let bytes = line.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            let len = bytes[start..]
                .iter()
                .position(|&b| !is_word_char(b as char))
                .unwrap_or(bytes.len() - start);
            if len > 0 {
                word(line[start..start + len].to_ascii_lowercase());
            }
            start += len + 1;
        }
        return;
    }
    // Unicode lowercasing can turn a separator into word characters (the Kelvin sign into
    // `k`), so the line is lowercased before it is split.
    line.to_lowercase()
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .for_each(|w| word(w.to_string()));
}

/// Flink's `Tokenizer`: emits `(word, 1)` for each word of a line (see [`for_each_word`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokenizer;

impl FlatMapFunction<String, (String, u64)> for Tokenizer {
    fn flat_map(
        &mut self,
        line: String,
        out: &mut Collector<'_, (String, u64)>,
    ) -> std::result::Result<(), BoxError> {
        for_each_word(&line, |w| out.collect((w, 1)));
        Ok(())
    }
}

/// Builds the WordCount job.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let text = match args.get("input") {
        Some(path) => env.read_text_file(path).stream(),
        None => {
            eprintln!(
                "Executing WordCount example with default input data set. Use --input to specify file input."
            );
            env.from_collection(DEFAULT_TEXT.iter().map(|s| s.to_string()).collect())
                .stream()
        }
    };
    let counts = text
        .flat_map(Tokenizer)
        .name("tokenizer")
        .key_by_ref(|(word, _): &(String, u64)| word)
        .sum::<1>()
        .name("counter");
    crate::emit(&counts, args, "word counts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn final_counts(lines: Vec<String>) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for l in lines {
            let inner = l.trim_start_matches('(').trim_end_matches(')');
            let (w, c) = inner.rsplit_once(',').unwrap();
            let c: u64 = c.parse().unwrap();
            let e = m.entry(w.to_string()).or_insert(0);
            *e = (*e).max(c);
        }
        m
    }

    #[test]
    fn tokenizer_matches_flinks() {
        let words: Vec<String> = tokenize("To be, or NOT to_be--'tis")
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(words, vec!["to", "be", "or", "not", "to_be", "tis"]);
    }

    #[test]
    fn ascii_lines_split_as_the_general_path_splits_them() {
        for line in [
            "",
            "  ",
            "a",
            "__",
            "--a--b--",
            "Hello, World! foo_bar 42x",
            "a b  c\t\td\n",
            "x",
            ".x.",
        ] {
            let general: Vec<(String, u64)> = line
                .to_lowercase()
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .map(|w| (w.to_string(), 1))
                .collect();
            assert_eq!(tokenize(line), general, "{line:?}");
        }
    }

    #[test]
    fn tokenizer_lowercases_unicode_before_splitting() {
        // U+212A KELVIN SIGN lowercases to an ASCII `k`; `É` to `é`, a separator.
        let words: Vec<String> = tokenize("O\u{212A} CAFÉ")
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(words, vec!["ok", "caf"]);
    }

    #[test]
    fn counts_a_directory_with_parallel_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        std::fs::write(input.join("a.txt"), "Hello world\nhello Fjord\n").unwrap();
        std::fs::write(input.join("b.txt"), "WORLD, hello!\n").unwrap();
        let output = dir.path().join("out");
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        let args = JobArgs::parse([
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
        .unwrap();
        build(&env, &args).unwrap();
        env.execute("wordcount").unwrap();
        let lines = crate::read_output(&output).unwrap();
        assert_eq!(lines.len(), 6, "one update per word occurrence: {lines:?}");
        let counts = final_counts(lines);
        assert_eq!(
            counts,
            BTreeMap::from([
                ("fjord".into(), 1),
                ("hello".into(), 3),
                ("world".into(), 2)
            ])
        );
    }

    #[test]
    fn default_text_counts_like_flink() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.txt");
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        build(
            &env,
            &JobArgs::parse(["--output", output.to_str().unwrap()]).unwrap(),
        )
        .unwrap();
        env.execute("wordcount").unwrap();
        let counts = final_counts(crate::read_output(&output).unwrap());
        assert_eq!(counts["to"], 11);
        assert_eq!(counts["be"], 3);
        assert_eq!(counts["sleep"], 3);
        assert_eq!(counts["tis"], 2);
    }
}
