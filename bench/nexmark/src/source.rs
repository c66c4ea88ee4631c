//! Where a query's events come from: the generator as a parallel Fjord source, or event files
//! written by [`write_files`] (the same events another system reads), with event time and
//! the benchmark's watermark (`dateTime - 4 s`).

use crate::config::NexmarkConfig;
use crate::error::NexmarkError;
use crate::generator::Generator;
use crate::json::{parse_event, write_event};
use crate::model::Event;
use fjord::sources::GeneratorSource;
use fjord::time::WatermarkStrategy;
use fjord::{DataStream, JobArgs, StreamExecutionEnvironment};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bound of the benchmark's watermark: `WATERMARK FOR dateTime AS dateTime - INTERVAL '4'
/// SECOND`.
pub const WATERMARK_DELAY: Duration = Duration::from_secs(4);

/// The events of a query: from `--input <file or directory>` (JSON lines of
/// [`write_files`]; the files of a directory are spread over the source's subtasks) or, without
/// it, from the generator configured by the Nexmark keys (see [`NexmarkConfig::from_args`]).
/// Each generator subtask makes the event numbers `n` with `n % parallelism == subtask`.
/// Event time is the event's `dateTime`; watermarks trail it by [`WATERMARK_DELAY`].
///
/// # Errors
/// [`NexmarkError::Config`] / [`NexmarkError::Args`] for bad generator keys.
pub fn events(
    env: &StreamExecutionEnvironment,
    args: &JobArgs,
) -> Result<DataStream<Event>, NexmarkError> {
    let raw = match args.get("input") {
        Some(path) => env.read_text_file_with(path, |line: &str| Ok(parse_event(line)?)),
        None => {
            let config = NexmarkConfig::from_args(args)?;
            let rate = config.rate_limited.then_some(config.tps);
            let generator = Generator::new(config);
            let events = generator.config().events;
            let mut source = GeneratorSource::new(events, move |n| generator.event(n));
            if let Some(rate) = rate {
                source = source.with_rate(rate);
            }
            env.from_source(source, "Source: nexmark")
                .uid("nexmark-source")
        }
    };
    let timed = raw.assign_timestamps_and_watermarks(
        WatermarkStrategy::for_bounded_out_of_orderness(WATERMARK_DELAY)
            .with_timestamp_assigner(|e: &Event, _| e.date_time()),
    );
    Ok((*timed).clone())
}

/// Writes the configured events (`events.num` must be set) to `files` JSON-lines files
/// `events-0.json`, `events-1.json`, ... in `dir` (created if missing), in parallel: file `i`
/// holds the event numbers `n` with `n % files == i`, in order. Returns the number of events.
///
/// # Errors
/// [`NexmarkError::Config`] for an unbounded configuration or zero files;
/// [`NexmarkError::Io`] when a file cannot be written.
pub fn write_files(config: &NexmarkConfig, dir: &Path, files: usize) -> Result<u64, NexmarkError> {
    let Some(total) = config.events else {
        return Err(NexmarkError::Config(
            "events.num = 0 (unbounded): give --events.num N to write files".into(),
        ));
    };
    if files == 0 {
        return Err(NexmarkError::Config(
            "--files 0: give at least one file".into(),
        ));
    }
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(|source| NexmarkError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let generator = Generator::new(config.clone());
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("events-{i}.json")))
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let generator = &generator;
                s.spawn(move || write_one(generator, path, i as u64, files as u64, total))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect::<Result<Vec<()>, NexmarkError>>()
    })?;
    Ok(total)
}

fn write_one(
    generator: &Generator,
    path: &Path,
    first: u64,
    stride: u64,
    total: u64,
) -> Result<(), NexmarkError> {
    let io = |source| NexmarkError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut line = String::with_capacity(1024);
    let mut n = first;
    while n < total {
        line.clear();
        write_event(&mut line, &generator.event(n));
        out.write_all(line.as_bytes()).map_err(io)?;
        n += stride;
    }
    out.flush().map_err(io)
}
