//! [`Store`]: the per-second, per-label measurement store.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use super::measure::{Extra, Unit};

/// Distinct error messages kept per bucket; the rest are counted under "other errors".
const MAX_ERROR_KINDS: usize = 50;
/// Latencies are recorded in microseconds with 3 significant digits.
const SIGFIG: u8 = 3;

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response; `success` is false for status >= 400 or a failed assertion.
    Response {
        status: u16,
        success: bool,
        message: Option<String>,
    },
    /// No response: a connection error, timeout, ... `kind` is short ("timeout").
    Error { kind: String, message: String },
    /// Still in flight when the load ended or a stop fired: its response time is its age
    /// then, a lower bound of its latency. Neither a success nor a failure.
    Unfinished,
}

impl Outcome {
    /// Whether the request ended (with a response or an error), rather than being cut.
    pub fn completed(&self) -> bool {
        !matches!(self, Self::Unfinished)
    }
}

/// One finished request as the engine reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub label: std::sync::Arc<str>,
    /// The second of the run it belongs to (by its scheduled or actual send time).
    pub second: u64,
    /// Response time: from the (scheduled) send time to the last byte.
    pub rt: Duration,
    /// Latency: to the first byte of the response.
    pub lt: Duration,
    /// Time spent connecting, when the client measured it (zero on a reused connection).
    pub ct: Option<Duration>,
    pub bytes: u64,
    pub outcome: Outcome,
    /// Requests in flight (busy virtual users) when it completed, as JMeter's `allThreads`:
    /// the concurrency this label was measured under.
    pub concurrency: u64,
    /// The second of the run it completed in (`second` is when it was due): served
    /// throughput counts completions here, so an overloaded server is not credited with the
    /// rate it was offered.
    pub completed: u64,
    /// Named measurements beyond the times (token streams, server timings); `None` for a
    /// plain request.
    pub extra: Option<Box<Extra>>,
}

/// Counts by name (response codes, error messages), small and sorted: most buckets hold one
/// or two names, and a long run holds many thousands of buckets.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally(Vec<(Box<str>, u64)>);

impl Tally {
    fn add(&mut self, name: &str, n: u64) {
        match self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name)) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.0.insert(i, (name.into(), n)),
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .is_ok()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, n)| (k.as_ref(), *n))
    }

    fn to_map(&self) -> BTreeMap<String, u64> {
        self.iter().map(|(k, n)| (k.to_owned(), n)).collect()
    }
}

/// Response codes and their counts, sorted; `0` stands for "Exception" (no response). No
/// allocation per name: most buckets hold one code.
#[derive(Clone, Debug, Default, PartialEq)]
struct Codes(Vec<(u16, u64)>);

/// The code of a sample without a response.
const EXCEPTION: u16 = 0;

impl Codes {
    fn add(&mut self, code: u16, n: u64) {
        match self.0.binary_search_by_key(&code, |(c, _)| *c) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.0.insert(i, (code, n)),
        }
    }

    fn name(code: u16) -> String {
        if code == EXCEPTION {
            "Exception".to_owned()
        } else {
            code.to_string()
        }
    }

    fn iter(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.0.iter().map(|&(c, n)| (Self::name(c), n))
    }
}

/// Counters that merge by addition.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    hits: u64,
    succ: u64,
    fail: u64,
    bytes: u64,
    codes: Codes,
    errors: Tally,
    dropped: u64,
    max_concurrency: u64,
    /// Responses completed in this second (by completion time, not by when they were due).
    served: u64,
    /// Requests cut while in flight (in `hits`, neither `succ` nor `fail`).
    unfinished: u64,
    /// LLM requests (sent, whatever their end).
    llm: u64,
    /// LLM requests judged against goodput SLOs, and those that met every one.
    judged: u64,
    good: u64,
    /// LLM requests whose output tokens were counted from events (no `usage`).
    counted: u64,
    /// `finish_reason`s of LLM responses.
    finish: Tally,
    /// Server timing headers that could not be read.
    malformed_timing: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.hits += other.hits;
        self.succ += other.succ;
        self.fail += other.fail;
        self.bytes += other.bytes;
        for &(code, n) in &other.codes.0 {
            self.codes.add(code, n);
        }
        for (message, n) in other.errors.iter() {
            add_error(&mut self.errors, message, n);
        }
        self.dropped += other.dropped;
        self.max_concurrency = self.max_concurrency.max(other.max_concurrency);
        self.served += other.served;
        self.unfinished += other.unfinished;
        self.llm += other.llm;
        self.judged += other.judged;
        self.good += other.good;
        self.counted += other.counted;
        for (reason, n) in other.finish.iter() {
            add_error(&mut self.finish, reason, n);
        }
        self.malformed_timing += other.malformed_timing;
    }
}

fn add_error(errors: &mut Tally, message: &str, n: u64) {
    let key = if errors.contains(message) || errors.len() < MAX_ERROR_KINDS {
        message
    } else {
        "other errors"
    };
    errors.add(key, n);
}

fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(SIGFIG).expect("3 significant digits are valid");
    h.auto(true);
    h
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The narrowest span older history is merged into, in seconds; spans double from there.
const MIN_SPAN: u64 = 10;

/// Values a distribution keeps as they are, before it needs a histogram: a label with a few
/// requests a second costs bytes, not the tens of kilobytes of a dense histogram.
const FEW: usize = 64;

/// One named distribution in one bucket: its count, sum and sum of squares (for exact means
/// and deviations), and its values (scaled to integers, see [`Unit::scale`]), kept as they
/// are while few, then in a dense histogram while the second is open, and in HdrHistogram's
/// compact V2 encoding once it is closed, so a long run's memory grows by little per second
/// however many requests it sends.
#[derive(Clone, Debug, Default)]
struct Dist {
    n: u64,
    sum: f64,
    sum_sq: f64,
    /// Exact extremes (the histogram's are within its precision); meaningful when `n > 0`.
    min: u64,
    max: u64,
    few: Vec<u32>,
    live: Option<Box<Histogram<u64>>>,
    closed: Box<[u8]>,
}

impl Dist {
    /// What it holds on the heap, about (a closed one: no dense histogram).
    fn heap_bytes(&self) -> usize {
        let live = self.live.as_ref().map_or(0, |h| 8 * h.distinct_values());
        allocation(self.closed.len()) + allocation(self.few.capacity() * 4) + live
    }

    fn has_histogram(&self) -> bool {
        self.live.is_some() || !self.closed.is_empty()
    }

    fn record(&mut self, value: u64) {
        let v = value as f64;
        self.min = if self.n == 0 {
            value
        } else {
            self.min.min(value)
        };
        self.max = self.max.max(value);
        self.n += 1;
        self.sum += v;
        self.sum_sq += v * v;
        if !self.has_histogram()
            && self.few.len() < FEW
            && let Ok(small) = u32::try_from(value)
        {
            self.few.push(small);
            return;
        }
        let few = std::mem::take(&mut self.few);
        let live = self.live.get_or_insert_with(|| Box::new(new_histogram()));
        for v in few {
            live.record(u64::from(v))
                .expect("auto-resizing histograms accept any value");
        }
        live.record(value)
            .expect("auto-resizing histograms accept any value");
    }

    /// Encodes the histogram compactly (with what an earlier close encoded); few values stay
    /// as they are.
    fn close(&mut self) {
        if self.live.is_none() {
            self.few.shrink_to_fit();
            return;
        }
        let mut h = new_histogram();
        self.histogram_into(&mut h);
        self.live = None;
        self.few = Vec::new();
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&h, &mut bytes)
            .expect("writing to memory does not fail");
        self.closed = bytes.into_boxed_slice();
    }

    fn histogram_into(&self, histogram: &mut Histogram<u64>) {
        for &v in &self.few {
            histogram
                .record(u64::from(v))
                .expect("auto-resizing histograms accept any value");
        }
        if let Some(h) = &self.live {
            histogram
                .add(h.as_ref())
                .expect("auto-resizing histograms accept any value");
        }
        if !self.closed.is_empty() {
            let closed: Histogram<u64> = Deserializer::new()
                .deserialize(&mut &self.closed[..])
                .expect("the store wrote it");
            histogram
                .add(&closed)
                .expect("auto-resizing histograms accept any value");
        }
    }

    fn merge_into(&self, into: &mut Summary) {
        if self.n == 0 {
            return;
        }
        into.min = if into.n == 0 {
            self.min
        } else {
            into.min.min(self.min)
        };
        into.max = into.max.max(self.max);
        into.n += self.n;
        into.sum += self.sum;
        into.sum_sq += self.sum_sq;
        self.histogram_into(&mut into.histogram);
    }

    /// One closed distribution of several (seconds of the same label): sums added, values
    /// merged into one histogram, encoded once.
    fn merged<'a>(dists: impl Iterator<Item = &'a Dist>) -> Dist {
        let mut out = Dist::default();
        let mut dense: Option<Histogram<u64>> = None;
        for d in dists.filter(|d| d.n > 0) {
            out.min = if out.n == 0 {
                d.min
            } else {
                out.min.min(d.min)
            };
            out.max = out.max.max(d.max);
            out.n += d.n;
            out.sum += d.sum;
            out.sum_sq += d.sum_sq;
            if dense.is_none() && !d.has_histogram() && out.few.len() + d.few.len() <= FEW {
                out.few.extend_from_slice(&d.few);
                continue;
            }
            let h = dense.get_or_insert_with(|| {
                let mut h = new_histogram();
                for v in out.few.drain(..) {
                    h.record(u64::from(v))
                        .expect("auto-resizing histograms accept any value");
                }
                h
            });
            d.histogram_into(h);
        }
        match dense {
            Some(h) => {
                out.few = Vec::new();
                out.live = Some(Box::new(h));
                out.close();
            }
            None => out.few.shrink_to_fit(),
        }
        out
    }
}

/// With the allocator's own overhead per allocation, about.
fn allocation(bytes: usize) -> usize {
    if bytes == 0 { 0 } else { bytes.max(16) + 16 }
}

/// The ids of the distributions every request has.
const RT: u16 = 0;
const LT: u16 = 1;
const CT: u16 = 2;
const FIXED: [&str; 3] = ["rt", "lt", "ct"];

/// One label's measurements in one second (or a span of seconds): counters, and each named
/// distribution by the store's id for its name (sorted by id; `rt` first).
#[derive(Clone, Debug)]
struct Bucket {
    counts: Counts,
    dists: Vec<(u16, Dist)>,
}

impl Bucket {
    fn new() -> Self {
        Self {
            counts: Counts::default(),
            dists: Vec::new(),
        }
    }

    /// What the bucket holds on the heap, about.
    fn heap_bytes(&self) -> usize {
        let names = |t: &Tally| t.0.iter().map(|(k, _)| 48 + k.len()).sum::<usize>();
        allocation(self.dists.capacity() * std::mem::size_of::<(u16, Dist)>())
            + self
                .dists
                .iter()
                .map(|(_, d)| d.heap_bytes())
                .sum::<usize>()
            + allocation(self.counts.codes.0.capacity() * 16)
            + names(&self.counts.errors)
            + names(&self.counts.finish)
    }

    fn dist(&mut self, id: u16) -> &mut Dist {
        let at = match self.dists.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => at,
            Err(at) => {
                self.dists.insert(at, (id, Dist::default()));
                at
            }
        };
        &mut self.dists[at].1
    }

    fn close(&mut self) {
        self.dists.iter_mut().for_each(|(_, d)| d.close());
    }

    /// Adds this bucket to a snapshot: counters, and the distributions `select` asks for
    /// (`names` maps ids to names).
    fn merge_into(&self, names: &[Box<str>], into: &mut Merged, select: Select<'_>) {
        into.counts.add(&self.counts);
        for (id, dist) in &self.dists {
            let name = names.get(usize::from(*id)).map_or("", |n| n.as_ref());
            if select.wants(name) {
                dist.merge_into(into.summary(name));
            }
        }
    }

    /// One closed bucket of several (seconds of the same label): counts added, each
    /// distribution merged and encoded once.
    fn merged(buckets: impl Iterator<Item = Bucket>) -> Bucket {
        let buckets: Vec<Bucket> = buckets.collect();
        let mut out = Bucket::new();
        let mut ids: Vec<u16> = Vec::new();
        for b in &buckets {
            out.counts.add(&b.counts);
            ids.extend(b.dists.iter().map(|(id, _)| *id));
        }
        ids.sort_unstable();
        ids.dedup();
        out.dists = ids
            .into_iter()
            .map(|id| {
                let of = buckets.iter().filter_map(|b| {
                    b.dists
                        .binary_search_by_key(&id, |(i, _)| *i)
                        .ok()
                        .map(|at| &b.dists[at].1)
                });
                (id, Dist::merged(of))
            })
            .collect();
        out
    }
}

/// Which distributions a window merges: all (reports) or only those a criterion reads.
#[derive(Clone, Copy, Debug)]
pub enum Select<'a> {
    All,
    Only(&'a [&'a str]),
}

impl Select<'_> {
    fn wants(self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(&name),
        }
    }
}

/// A window being merged: counters and distributions by name.
struct Merged {
    counts: Counts,
    dists: Vec<(String, Summary)>,
}

impl Merged {
    fn summary(&mut self, name: &str) -> &mut Summary {
        let at = match self.dists.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                self.dists.push((name.to_owned(), Summary::new()));
                self.dists.len() - 1
            }
        };
        &mut self.dists[at].1
    }
}

/// A distribution merged over a window: count, sums and histogram (values scaled by its
/// [`Unit`]).
#[derive(Clone, Debug)]
pub struct Summary {
    n: u64,
    sum: f64,
    sum_sq: f64,
    min: u64,
    max: u64,
    histogram: Histogram<u64>,
}

impl Summary {
    fn new() -> Self {
        Self {
            n: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: 0,
            max: 0,
            histogram: new_histogram(),
        }
    }

    /// How many values it holds.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The sum of its values in the unit's base (total output tokens, ...).
    pub fn total(&self, unit: Unit) -> f64 {
        self.sum / unit.scale()
    }

    /// The mean, in scaled units.
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The population standard deviation, in scaled units.
    fn stdev(&self) -> Option<f64> {
        let mean = self.mean()?;
        let var = (self.sum_sq / self.n as f64 - mean * mean).max(0.0);
        Some(var.sqrt())
    }

    /// An aggregate in the unit's base (seconds, tokens, tokens/s); `None` when empty.
    pub fn aggregate(&self, agg: Agg, unit: Unit) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let scaled = match agg {
            Agg::Avg => self.mean()?,
            Agg::Stdev => self.stdev()?,
            Agg::Min => self.min as f64,
            Agg::Max => self.max as f64,
            // Within the histogram's precision, and never outside the exact extremes.
            Agg::Percentile(level) => {
                let v = self.histogram.value_at_quantile(level / 100.0);
                v.clamp(self.min, self.max) as f64
            }
        };
        Some(scaled / unit.scale())
    }

    /// The histogram in HdrHistogram's V2 encoding, base64 (values scaled by the unit).
    pub fn histogram_base64(&self) -> Option<String> {
        use base64::Engine as _;
        if self.histogram.is_empty() {
            return None;
        }
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.histogram, &mut bytes)
            .ok()?;
        Some(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// How a distribution is summed up.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "level")]
pub enum Agg {
    Avg,
    Min,
    Max,
    Stdev,
    /// `p95`: a percentile, 0 to 100.
    Percentile(f64),
}

impl Agg {
    /// `avg`, `min`, `max`, `stdev`, `p95`, `p99.9`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "avg" => Some(Self::Avg),
            "min" => Some(Self::Min),
            "max" => Some(Self::Max),
            "stdev" => Some(Self::Stdev),
            _ => {
                let level = text.strip_prefix('p')?;
                if !level.starts_with(|c: char| c.is_ascii_digit()) {
                    return None;
                }
                level
                    .parse::<f64>()
                    .ok()
                    .filter(|l| (0.0..=100.0).contains(l))
                    .map(Self::Percentile)
            }
        }
    }
}

impl std::fmt::Display for Agg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Avg => f.write_str("avg"),
            Self::Min => f.write_str("min"),
            Self::Max => f.write_str("max"),
            Self::Stdev => f.write_str("stdev"),
            Self::Percentile(level) => write!(f, "p{level}"),
        }
    }
}

/// Buckets of every label (by index) over seconds `from..to`.
#[derive(Clone, Debug)]
struct Span {
    from: u64,
    to: u64,
    buckets: Vec<Option<Bucket>>,
}

impl Span {
    /// Consecutive spans as one.
    fn merged(spans: Vec<Span>) -> Span {
        let from = spans.first().map_or(0, |s| s.from);
        let to = spans.last().map_or(0, |s| s.to);
        let labels = spans.iter().map(|s| s.buckets.len()).max().unwrap_or(0);
        let mut columns: Vec<Vec<Bucket>> = (0..labels).map(|_| Vec::new()).collect();
        for span in spans {
            for (column, bucket) in columns.iter_mut().zip(span.buckets) {
                column.extend(bucket);
            }
        }
        let buckets = columns
            .into_iter()
            .map(|c| (!c.is_empty()).then(|| Bucket::merged(c.into_iter())))
            .collect();
        Span { from, to, buckets }
    }
}

/// How much history a store keeps at full resolution. Criteria look back at most `keep`
/// seconds from the latest closed one; those are always kept per second. Beyond them, the
/// store keeps closed per-second rows while they take at most `fine_bytes`, and merges older
/// rows into spans (counts added, histograms merged: percentiles and maxima stay exact for a
/// span), doubling the spans' width whenever they take more than `coarse_bytes`. Memory thus
/// stays bounded however long the run, with any number of labels; a short run keeps every
/// second.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub keep: u64,
    pub fine_bytes: usize,
    pub coarse_bytes: usize,
}

impl Retention {
    /// About 18 MB of history at most (see `bench/store_memory.sh`), more only when the
    /// criteria's timeframes need it.
    pub fn keeping(keep: u64) -> Self {
        Self {
            keep,
            fine_bytes: 12 << 20,
            coarse_bytes: 6 << 20,
        }
    }
}

/// PromQL's `histogram_quantile` over cumulative bucket counts (`le`, count), any order.
fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total.is_nan() || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total;
    let at = buckets.iter().position(|(_, count)| *count >= rank)?;
    let (upper, count) = buckets[at];
    if upper.is_infinite() {
        // Above the last finite bound: that bound is the best estimate.
        return Some(if at > 0 { buckets[at - 1].0 } else { 0.0 });
    }
    let (lower, below) = if at == 0 {
        (0.0_f64.min(upper), 0.0)
    } else {
        buckets[at - 1]
    };
    if count == below {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / (count - below))
}

/// What a closed row takes in memory, about.
fn row_bytes(row: &[Option<Bucket>]) -> usize {
    std::mem::size_of_val(row) + row.iter().flatten().map(Bucket::heap_bytes).sum::<usize>()
}

/// Measurements of a run, per second and per label (`""` is every label).
#[derive(Clone, Debug, Default)]
pub struct Store {
    labels: Vec<String>,
    /// The label of the last sample and its index: samples share their request's label
    /// (`Arc<str>`), so a pointer comparison finds it without comparing text.
    last_label: Option<(std::sync::Arc<str>, usize)>,
    /// Distribution names by id (`rt`, `lt`, `ct` first once anything was recorded).
    names: Vec<Box<str>>,
    /// History before `fine_from`, merged into spans: oldest first, contiguous from 0.
    coarse: Vec<Span>,
    /// `fine[s - fine_from][label index]`: one row per second from `fine_from` on.
    fine: VecDeque<Vec<Option<Bucket>>>,
    fine_from: u64,
    /// The width coarse spans grow to.
    width: u64,
    /// Seconds before this one are closed.
    open_from: u64,
    /// `None`: every second is kept.
    retention: Option<Retention>,
    /// When the load ended (from the start of the run), once it has.
    end: Option<Duration>,
    /// Monitoring series `source/metric` → second → (sum, count) of the readings in it.
    series: BTreeMap<String, BTreeMap<u64, (f64, u32)>>,
    /// Prometheus histograms `source/metric` → second → (`le`, observations per second).
    buckets: BTreeMap<String, BTreeMap<u64, Vec<(f64, f64)>>>,
    /// Provisional samples merged into every window while set: requests still in flight,
    /// at their age so far (see [`Store::set_overlay`]).
    overlay: Option<Box<Store>>,
}

impl Store {
    fn label_index(&mut self, label: &str) -> usize {
        match self.labels.iter().position(|l| l == label) {
            Some(i) => i,
            None => {
                self.labels.push(label.to_owned());
                self.labels.len() - 1
            }
        }
    }

    /// The id of a distribution's name, added when new.
    fn name_id(&mut self, name: &str) -> u16 {
        if self.names.is_empty() {
            self.names = FIXED.iter().map(|n| Box::from(*n)).collect();
        }
        match self.names.iter().position(|n| n.as_ref() == name) {
            Some(i) => u16::try_from(i).unwrap_or(u16::MAX),
            None => {
                self.names.push(name.into());
                u16::try_from(self.names.len() - 1).unwrap_or(u16::MAX)
            }
        }
    }

    /// The names of the distributions recorded, in first-seen order (`rt`, `lt`, `ct` first).
    pub fn distributions(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| n.as_ref())
    }

    /// A store that keeps its memory bounded (see [`Retention`]).
    pub fn with_retention(retention: Retention) -> Self {
        Self {
            retention: Some(retention),
            ..Self::default()
        }
    }

    /// The index of a sample's label: the last one's without a lookup when it is the same.
    fn sample_label_index(&mut self, label: &std::sync::Arc<str>) -> usize {
        if let Some((last, index)) = &self.last_label
            && std::sync::Arc::ptr_eq(last, label)
        {
            return *index;
        }
        let index = self.label_index(label);
        self.last_label = Some((label.clone(), index));
        index
    }

    fn bucket(&mut self, second: u64, label: &str) -> &mut Bucket {
        let index = self.label_index(label);
        self.bucket_at(second, index)
    }

    fn bucket_at(&mut self, second: u64, index: usize) -> &mut Bucket {
        let row = if second >= self.fine_from {
            let at = usize::try_from(second - self.fine_from).expect("seconds fit in usize");
            if self.fine.len() <= at {
                self.fine.resize_with(at + 1, Vec::new);
            }
            &mut self.fine[at]
        } else {
            // A late sample of a second already merged: into its span.
            let at = self.coarse.partition_point(|s| s.to <= second);
            &mut self.coarse[at].buckets
        };
        if row.len() <= index {
            row.resize_with(index + 1, || None);
        }
        row[index].get_or_insert_with(Bucket::new)
    }

    /// The rows of history as `(from, to)` seconds: merged spans, then single seconds.
    pub fn spans(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let coarse = self.coarse.iter().map(|s| (s.from, s.to));
        let fine = (self.fine_from..self.seconds()).map(|s| (s, s + 1));
        coarse.chain(fine)
    }

    /// Labels seen so far, in first-seen order (`""` first once anything was recorded).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().map(String::as_str)
    }

    /// Number of seconds with a bucket (the last second index + 1).
    pub fn seconds(&self) -> u64 {
        self.fine_from + self.fine.len() as u64
    }

    /// Files a sample under its label and under `""`.
    pub fn record(&mut self, sample: &Sample) {
        if self.names.is_empty() {
            self.name_id("rt");
        }
        let extra: Vec<(u16, u64)> = sample
            .extra
            .iter()
            .flat_map(|e| e.measures.iter())
            .filter(|m| m.value.is_finite() && m.value >= 0.0)
            .map(|m| {
                let scaled = m.value * Unit::of(&m.name).scale();
                (self.name_id(&m.name), scaled.round() as u64)
            })
            .collect();
        // `""` first: it is the first label of every store.
        let overall = self.label_index("");
        let own = self.sample_label_index(&sample.label);
        for (label, index) in [("", overall), (&*sample.label, own)] {
            let bucket = self.bucket_at(sample.second, index);
            let c = &mut bucket.counts;
            c.hits += 1;
            c.max_concurrency = c.max_concurrency.max(sample.concurrency);
            // Most responses complete in the second they were due: served there, without a
            // second bucket lookup.
            let served_here = sample.completed <= sample.second && sample.outcome.completed();
            if served_here {
                c.served += 1;
            }
            c.bytes += sample.bytes;
            if let Some(extra) = &sample.extra {
                c.malformed_timing += u64::from(extra.malformed_timing);
                if let Some(llm) = &extra.llm {
                    c.llm += 1;
                    c.counted += u64::from(llm.counted);
                    if let Some(good) = llm.good {
                        c.judged += 1;
                        c.good += u64::from(good);
                    }
                    if let Some(reason) = &llm.finish_reason {
                        add_error(&mut c.finish, reason, 1);
                    }
                }
            }
            match &sample.outcome {
                Outcome::Response {
                    status,
                    success,
                    message,
                } => {
                    if *success {
                        c.succ += 1
                    } else {
                        c.fail += 1
                    }
                    c.codes.add(*status, 1);
                    if let Some(m) = message.as_deref().filter(|_| !*success) {
                        add_error(&mut c.errors, m, 1);
                    }
                }
                Outcome::Error { kind, message } => {
                    c.fail += 1;
                    c.codes.add(EXCEPTION, 1);
                    add_error(&mut c.errors, &format!("{kind}: {message}"), 1);
                }
                Outcome::Unfinished => c.unfinished += 1,
            }
            bucket.dist(RT).record(micros(sample.rt));
            bucket.dist(LT).record(micros(sample.lt));
            if let Some(ct) = sample.ct {
                bucket
                    .dist(CT)
                    .record(u64::try_from(ct.as_micros()).unwrap_or(u64::MAX));
            }
            for &(id, value) in &extra {
                bucket.dist(id).record(value);
            }
            if label.is_empty() && sample.label.is_empty() {
                break;
            }
        }
        if sample.completed > sample.second && sample.outcome.completed() {
            for label in ["", &*sample.label] {
                self.bucket(sample.completed, label).counts.served += 1;
                if sample.label.is_empty() {
                    break;
                }
            }
        }
    }

    /// Requests the open model could not send in `second` for want of a free slot.
    pub fn record_dropped(&mut self, second: u64, label: &str, n: u64) {
        for l in ["", label] {
            self.bucket(second, l).counts.dropped += n;
        }
    }

    /// The number of requests in flight (or busy virtual users) observed in `second`.
    pub fn record_concurrency(&mut self, second: u64, label: &str, in_flight: u64) {
        for l in ["", label] {
            let c = &mut self.bucket(second, l).counts;
            c.max_concurrency = c.max_concurrency.max(in_flight);
        }
    }

    /// Closes every second before `second`: their histograms become compact, and with a
    /// [`Retention`], the oldest are merged into spans.
    pub fn close_before(&mut self, second: u64) {
        let end = second.min(self.seconds());
        let start = self.open_from.max(self.fine_from).min(end);
        for s in start..end {
            let at = usize::try_from(s - self.fine_from).unwrap_or(usize::MAX);
            if let Some(row) = self.fine.get_mut(at) {
                row.iter_mut().flatten().for_each(Bucket::close);
            }
        }
        self.open_from = self.open_from.max(second);
        if let Some(retention) = self.retention {
            self.compact(retention, second);
        }
    }

    /// Merges closed seconds older than `retention.keep` before `closed` into spans while
    /// there are more than the budget allows.
    fn compact(&mut self, retention: Retention, closed: u64) {
        let closed_rows = usize::try_from(self.open_from.saturating_sub(self.fine_from))
            .unwrap_or(usize::MAX)
            .min(self.fine.len());
        let mut fine_bytes: usize = self
            .fine
            .iter()
            .take(closed_rows)
            .map(|r| row_bytes(r))
            .sum();
        // Over the budget: rows go to spans until an eighth of it is free again, a span's
        // width of rows at a time (each span is encoded once).
        if fine_bytes > retention.fine_bytes {
            let target = retention.fine_bytes - retention.fine_bytes / 8;
            while fine_bytes > target {
                let width = self.width.max(MIN_SPAN);
                let movable = self
                    .open_from
                    .min(closed.saturating_sub(retention.keep))
                    .saturating_sub(self.fine_from)
                    .min(width);
                if movable == 0 {
                    break;
                }
                let from = self.fine_from;
                let mut rows = Vec::new();
                for second in from..from + movable {
                    let Some(buckets) = self.fine.pop_front() else {
                        break;
                    };
                    fine_bytes = fine_bytes.saturating_sub(row_bytes(&buckets));
                    self.fine_from += 1;
                    rows.push(Span {
                        from: second,
                        to: second + 1,
                        buckets,
                    });
                }
                if rows.is_empty() {
                    break;
                }
                self.coarse.push(Span::merged(rows));
            }
        }
        let coarse_bytes =
            |coarse: &[Span]| -> usize { coarse.iter().map(|s| row_bytes(&s.buckets)).sum() };
        while self.coarse.len() > 1 && coarse_bytes(&self.coarse) > retention.coarse_bytes {
            let extent = self.coarse[self.coarse.len() - 1].to - self.coarse[0].from;
            if self.width < extent {
                self.width = self.width.max(MIN_SPAN) * 2;
            }
            let before = self.coarse.len();
            let mut groups: Vec<Vec<Span>> = Vec::new();
            for span in std::mem::take(&mut self.coarse) {
                match groups.last_mut() {
                    Some(group) if span.to - group[0].from <= self.width => group.push(span),
                    _ => groups.push(vec![span]),
                }
            }
            self.coarse = groups.into_iter().map(Span::merged).collect();
            if self.coarse.len() == before && self.width >= extent {
                break;
            }
        }
        self.coarsen_series();
    }

    /// Monitoring readings before `fine_from` are merged into the span they fall in (keyed
    /// by its first second).
    fn coarsen_series(&mut self) {
        if self.coarse.is_empty() {
            return;
        }
        for points in self.series.values_mut() {
            let recent = points.split_off(&self.fine_from);
            let old = std::mem::replace(points, recent);
            for (second, (sum, n)) in old {
                let at = self.coarse.partition_point(|s| s.to <= second);
                let key = self.coarse.get(at).map_or(second, |s| s.from);
                let e = points.entry(key).or_insert((0.0, 0));
                e.0 += sum;
                e.1 += n;
            }
        }
    }

    /// Files a monitoring reading of `subject` (`source/metric`) taken in `second`.
    pub fn record_metric(&mut self, second: u64, subject: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        let slot = match self.series.get_mut(subject) {
            Some(s) => s,
            None => self.series.entry(subject.to_owned()).or_default(),
        };
        let e = slot.entry(second).or_insert((0.0, 0));
        e.0 += value;
        e.1 += 1;
    }

    /// Files a Prometheus histogram's bucket rates (`le` → observations per second since the
    /// last scrape, cumulative over `le` as the exposition gives them) read in `second`.
    pub fn record_buckets(&mut self, second: u64, subject: &str, buckets: &[(f64, f64)]) {
        let slot = match self.buckets.get_mut(subject) {
            Some(s) => s,
            None => self.buckets.entry(subject.to_owned()).or_default(),
        };
        let at = slot.entry(second).or_default();
        for &(le, rate) in buckets.iter().filter(|(_, r)| r.is_finite()) {
            match at.iter_mut().find(|(l, _)| *l == le) {
                Some(e) => e.1 += rate,
                None => at.push((le, rate)),
            }
        }
    }

    /// The `q` quantile (0 to 1) of a Prometheus histogram over seconds `from..to`, as
    /// PromQL's `histogram_quantile` over a rate: the buckets' observations in the window,
    /// linear within the bucket the rank falls in (from 0 below the first); the upper bound
    /// of the last finite bucket when it falls in `+Inf`. `None` without observations.
    pub fn histogram_quantile(&self, subject: &str, q: f64, from: u64, to: u64) -> Option<f64> {
        let mut totals: Vec<(f64, f64)> = Vec::new();
        for buckets in self.buckets.get(subject)?.range(from..to).map(|(_, b)| b) {
            for &(le, rate) in buckets {
                match totals.iter_mut().find(|(l, _)| *l == le) {
                    Some(e) => e.1 += rate,
                    None => totals.push((le, rate)),
                }
            }
        }
        bucket_quantile(q, &mut totals)
    }

    /// The mean of a Prometheus histogram's observations over seconds `from..to`
    /// (`rate(_sum) / rate(_count)`): each scrape's mean (its series, `Δsum / Δcount`)
    /// weighted by its observations (the `+Inf` bucket's rate; scrapes are evenly spaced).
    /// `None` without observations.
    pub fn histogram_mean(&self, subject: &str, from: u64, to: u64) -> Option<f64> {
        let buckets = self.buckets.get(subject)?;
        let means = self.series.get(subject)?;
        let (mut weighted, mut total) = (0.0, 0.0);
        for (second, b) in buckets.range(from..to) {
            let count = b
                .iter()
                .filter(|(le, _)| le.is_infinite())
                .map(|(_, n)| *n)
                .sum::<f64>();
            let Some((sum, n)) = means.get(second) else {
                continue;
            };
            if count > 0.0 && *n > 0 {
                weighted += sum / f64::from(*n) * count;
                total += count;
            }
        }
        (total > 0.0).then(|| weighted / total)
    }

    /// The monitoring subjects with at least one reading, sorted.
    pub fn metric_subjects(&self) -> impl Iterator<Item = &str> {
        self.series.keys().map(String::as_str)
    }

    /// `subject`'s readings per second (the mean when a second has several).
    pub fn metric_points(&self, subject: &str) -> Vec<(u64, f64)> {
        self.series
            .get(subject)
            .map(|s| {
                s.iter()
                    .map(|(t, (sum, n))| (*t, sum / f64::from(*n)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The mean of `subject`'s readings in seconds `from..to`, weighted by readings; `None`
    /// when there was none.
    pub fn metric_window(&self, subject: &str, from: u64, to: u64) -> Option<f64> {
        let (sum, n) = self
            .series
            .get(subject)?
            .range(from..to)
            .fold((0.0, 0u32), |(s, n), (_, (vs, vn))| (s + vs, n + vn));
        (n > 0).then(|| sum / f64::from(n))
    }

    /// Marks the end of the load: the cumulative throughput is then divided by the exact
    /// measured time, not by whole seconds (a 3.4 s run is not a 4 s one).
    pub fn set_end(&mut self, elapsed: Duration) {
        self.end = Some(elapsed);
    }

    /// `label`'s measurements merged over seconds `from..to` (empty when none).
    pub fn window(&self, label: &str, from: u64, to: u64) -> Snapshot {
        self.window_of(&[label], from, to)
    }

    /// Several labels' measurements merged over seconds `from..to` (a scenario's labels);
    /// empty, with no time, when none of them was seen.
    pub fn window_of<S: AsRef<str>>(&self, labels: &[S], from: u64, to: u64) -> Snapshot {
        self.window_selecting(labels, from, to, Select::All)
    }

    /// Like [`Store::window_of`], merging only the distributions `select` names (a
    /// criterion's window need not decode every histogram).
    pub fn window_selecting<S: AsRef<str>>(
        &self,
        labels: &[S],
        from: u64,
        to: u64,
        select: Select<'_>,
    ) -> Snapshot {
        let mut merged = Merged {
            counts: Counts::default(),
            dists: Vec::new(),
        };
        let mut span = self.merge_window(labels, from, to, &mut merged, select);
        if let Some(overlay) = &self.overlay {
            let more = overlay.merge_window(labels, from, to, &mut merged, select);
            span = span.max(more);
        }
        // Reports list the distributions in the store's order (`rt`, `lt`, `ct` first).
        let order = |name: &str| self.names.iter().position(|n| n.as_ref() == name);
        merged.dists.sort_by_key(|(name, _)| order(name));
        Snapshot {
            counts: merged.counts,
            dists: merged.dists,
            seconds: span as f64,
        }
    }

    /// Merges `labels`' buckets of seconds `from..to` into `merged`; returns
    /// how many seconds that spans (0 when no label was seen).
    fn merge_window<S: AsRef<str>>(
        &self,
        labels: &[S],
        from: u64,
        to: u64,
        merged: &mut Merged,
        select: Select<'_>,
    ) -> u64 {
        let to = to.min(self.seconds());
        let indices: Vec<usize> = labels
            .iter()
            .filter_map(|l| self.labels.iter().position(|x| x == l.as_ref()))
            .collect();
        let mut merge = |row: &[Option<Bucket>]| {
            for &index in &indices {
                if let Some(Some(bucket)) = row.get(index) {
                    bucket.merge_into(&self.names, merged, select);
                }
            }
        };
        // Spans that overlap the window count whole: their seconds were merged.
        for span in self.coarse.iter().filter(|s| s.to > from && s.from < to) {
            merge(&span.buckets);
        }
        for s in from.max(self.fine_from)..to {
            if let Some(row) = self
                .fine
                .get(usize::try_from(s - self.fine_from).unwrap_or(usize::MAX))
            {
                merge(row);
            }
        }
        if indices.is_empty() {
            0
        } else {
            to.saturating_sub(from)
        }
    }

    /// Merges `provisional` samples into every window until [`Store::clear_overlay`]: the
    /// requests still in flight, each at its age so far, let a criterion see a breach that
    /// is already certain while the store itself holds only what completed.
    pub fn set_overlay(&mut self, provisional: &[Sample]) {
        let mut overlay = Store::default();
        // Rows from the first second it holds only: nothing before it.
        let first = provisional.iter().map(|s| s.second).min().unwrap_or(0);
        overlay.fine_from = first;
        overlay.open_from = first;
        if first > 0 {
            overlay.coarse.push(Span {
                from: 0,
                to: first,
                buckets: Vec::new(),
            });
        }
        for sample in provisional {
            overlay.record(sample);
        }
        self.overlay = Some(Box::new(overlay));
    }

    pub fn clear_overlay(&mut self) {
        self.overlay = None;
    }

    /// When the load ended, once it has.
    pub fn end(&self) -> Option<Duration> {
        self.end
    }

    /// Everything recorded for `label`. Once the end is set, throughput is over the measured
    /// time: from the first second with a sample (after any warm-up) to the end of the load.
    ///
    /// A label's own rates are over its active time: from its first second with a sample to
    /// the end of the second its last response completed in (or the end of the load, if
    /// sooner), so a label sent in only part of the run (an execution that starts later, a
    /// step of a sweep) is not credited with the whole run's time.
    pub fn cumulative(&self, label: &str) -> Snapshot {
        let mut snapshot = self.window(label, 0, self.seconds());
        if let Some(measured) = self.cumulative_seconds(label) {
            snapshot.seconds = measured;
        }
        snapshot
    }

    /// The time a label's whole-run rates are over: the run's measured time for `""`, a
    /// label's active time otherwise; `None` before the end is set.
    pub fn cumulative_seconds(&self, label: &str) -> Option<f64> {
        if label.is_empty() {
            self.measured_seconds()
        } else {
            self.active_seconds(label)
        }
    }

    /// `label`'s active time once the end is set (see [`Store::cumulative`]).
    fn active_seconds(&self, label: &str) -> Option<f64> {
        let end = self.end?.as_secs_f64();
        let index = self.labels.iter().position(|l| l == label)?;
        let (first, last) = self.active_range(index)?;
        let measured = ((last + 1) as f64).min(end) - first as f64;
        (measured > 0.0).then_some(measured)
    }

    /// The first second with a sample or a dropped request of label `index`, and the last
    /// with a sample or a completion (coarse spans count by their ends).
    fn active_range(&self, index: usize) -> Option<(u64, u64)> {
        let counts = |row: &[Option<Bucket>]| {
            row.get(index)
                .and_then(Option::as_ref)
                .map(|b| (b.counts.hits + b.counts.dropped, b.counts.served))
        };
        let mut first = None;
        let mut last = None;
        for span in &self.coarse {
            if let Some((sent, served)) = counts(&span.buckets) {
                if sent > 0 && first.is_none() {
                    first = Some(span.from);
                }
                if sent + served > 0 {
                    last = Some(span.to.saturating_sub(1));
                }
            }
        }
        for (i, row) in self.fine.iter().enumerate() {
            let second = self.fine_from + i as u64;
            if let Some((sent, served)) = counts(row) {
                if sent > 0 && first.is_none() {
                    first = Some(second);
                }
                if sent + served > 0 {
                    last = Some(second);
                }
            }
        }
        Some((first?, last?))
    }

    /// The measured time once the end is set: from the first second with a sample (after
    /// any warm-up) to the end of the load.
    pub fn measured_seconds(&self) -> Option<f64> {
        let end = self.end?;
        let first = self.first_second().unwrap_or(0) as f64;
        let measured = end.as_secs_f64() - first;
        (measured > 0.0).then_some(measured)
    }

    /// The first second with a sample or a dropped request (concurrency alone, as during
    /// warm-up, does not count).
    fn first_second(&self) -> Option<u64> {
        let overall = self.labels.iter().position(String::is_empty)?;
        let measured = |row: &[Option<Bucket>]| {
            row.get(overall)
                .and_then(Option::as_ref)
                .is_some_and(|b| b.counts.hits + b.counts.dropped > 0)
        };
        if let Some(span) = self.coarse.iter().find(|s| measured(&s.buckets)) {
            return Some(span.from);
        }
        let first = self.fine.iter().position(|row| measured(row))?;
        Some(self.fine_from + first as u64)
    }
}

/// Merged measurements of one label over a span of seconds, with the KPIs of DESIGN §4.6.
#[derive(Clone, Debug)]
pub struct Snapshot {
    counts: Counts,
    /// Distributions by name, in the store's order.
    dists: Vec<(String, Summary)>,
    /// How many seconds were merged, or the measured time (for throughput).
    seconds: f64,
}

impl Snapshot {
    pub fn hits(&self) -> u64 {
        self.counts.hits
    }
    pub fn succ(&self) -> u64 {
        self.counts.succ
    }
    pub fn fail(&self) -> u64 {
        self.counts.fail
    }
    pub fn bytes(&self) -> u64 {
        self.counts.bytes
    }
    pub fn dropped(&self) -> u64 {
        self.counts.dropped
    }
    /// Requests still in flight when the load ended (their age is in the latencies).
    pub fn unfinished(&self) -> u64 {
        self.counts.unfinished
    }
    pub fn concurrency(&self) -> u64 {
        self.counts.max_concurrency
    }
    /// Response codes (`"200"`, `"Exception"`) and their counts.
    pub fn codes(&self) -> BTreeMap<String, u64> {
        self.counts.codes.iter().collect()
    }
    /// Error messages and their counts (at most 50 kinds, then "other errors").
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.counts.errors.to_map()
    }

    /// A named distribution merged over the window; `None` when it has no values (or the
    /// window did not select it).
    pub fn distribution(&self, name: &str) -> Option<&Summary> {
        self.dists
            .iter()
            .find(|(n, d)| n == name && d.n > 0)
            .map(|(_, d)| d)
    }

    /// The distributions with values, by name, in the store's order.
    pub fn distributions(&self) -> impl Iterator<Item = (&str, &Summary)> {
        self.dists
            .iter()
            .filter(|(_, d)| d.n > 0)
            .map(|(n, d)| (n.as_str(), d))
    }

    /// An aggregate of a named distribution in its unit's base (seconds, tokens, tokens/s);
    /// `None` without values: a KPI without data is never a silent zero.
    pub fn aggregate(&self, name: &str, agg: Agg) -> Option<f64> {
        self.distribution(name)?.aggregate(agg, Unit::of(name))
    }

    fn time(&self, name: &str, agg: Agg) -> Option<Duration> {
        self.aggregate(name, agg).map(Duration::from_secs_f64)
    }

    /// `None` when there were no samples: a KPI without data is never a silent zero.
    pub fn avg_rt(&self) -> Option<Duration> {
        self.time("rt", Agg::Avg)
    }
    pub fn avg_lt(&self) -> Option<Duration> {
        self.time("lt", Agg::Avg)
    }
    /// `None` unless connect times were measured.
    pub fn avg_ct(&self) -> Option<Duration> {
        self.time("ct", Agg::Avg)
    }

    /// Population standard deviation of the response time.
    pub fn stdev_rt(&self) -> Option<Duration> {
        self.time("rt", Agg::Stdev)
    }

    /// The merged latency histogram (microseconds) in HdrHistogram's V2 encoding, base64;
    /// `None` without samples.
    pub fn histogram_base64(&self) -> Option<String> {
        self.distribution("rt")?.histogram_base64()
    }

    /// Any percentile of the response time, from the merged histogram.
    pub fn percentile(&self, level: f64) -> Option<Duration> {
        self.time("rt", Agg::Percentile(level))
    }

    /// LLM requests (sent, whatever their end).
    pub fn llm_requests(&self) -> u64 {
        self.counts.llm
    }

    /// Goodput: the share (0 to 1) of LLM requests judged against the goodput SLOs that met
    /// every one; `None` without SLOs or requests.
    pub fn goodput(&self) -> Option<f64> {
        (self.counts.judged > 0).then(|| self.counts.good as f64 / self.counts.judged as f64)
    }

    /// LLM requests judged against the goodput SLOs, and those that met them all.
    pub fn goodput_counts(&self) -> (u64, u64) {
        (self.counts.good, self.counts.judged)
    }

    /// The share (0 to 1) of LLM responses with a finish reason that were cut at the token
    /// limit (`length`); `None` without any.
    pub fn truncated(&self) -> Option<f64> {
        let (cut, finished) = self.truncated_counts();
        (finished > 0).then(|| cut as f64 / finished as f64)
    }

    /// LLM responses cut at the token limit (`length`), and those with a finish reason.
    pub fn truncated_counts(&self) -> (u64, u64) {
        let finished: u64 = self.counts.finish.iter().map(|(_, n)| n).sum();
        let cut = self
            .counts
            .finish
            .iter()
            .find(|(r, _)| *r == "length")
            .map_or(0, |(_, n)| n);
        (cut, finished)
    }

    /// `finish_reason`s and their counts.
    pub fn finish_reasons(&self) -> BTreeMap<String, u64> {
        self.counts.finish.to_map()
    }

    /// LLM requests whose output tokens were counted from events, not read from `usage`.
    pub fn tokens_counted(&self) -> u64 {
        self.counts.counted
    }

    /// Server timing headers that could not be read.
    pub fn malformed_timing(&self) -> u64 {
        self.counts.malformed_timing
    }

    /// Sets the time throughput is divided by (the measured time of a cumulative snapshot).
    pub fn set_seconds(&mut self, seconds: f64) {
        if seconds > 0.0 {
            self.seconds = seconds;
        }
    }

    /// Served throughput: responses completed per second over the merged seconds (counted
    /// by when they completed).
    pub fn throughput(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| self.counts.served as f64 / self.seconds)
    }

    /// The time rates are over: the merged seconds, or the measured time.
    pub fn throughput_seconds(&self) -> Option<f64> {
        (self.seconds > 0.0).then_some(self.seconds)
    }

    /// Responses completed in the merged seconds.
    pub fn served(&self) -> u64 {
        self.counts.served
    }

    /// Offered rate: arrivals (sent or dropped) per second, by when they were due.
    pub fn offered(&self) -> Option<f64> {
        (self.seconds > 0.0).then(|| (self.counts.hits + self.counts.dropped) as f64 / self.seconds)
    }

    /// Samples whose response code matches `pattern` (`5??`, `2*`, `Exception`).
    pub fn rc(&self, pattern: &str) -> u64 {
        self.counts
            .codes
            .iter()
            .filter(|(code, _)| code_matches(pattern, code))
            .map(|(_, n)| n)
            .sum()
    }
}

/// `5??` matches `503`; `*` any run; `x`/`X` like `?` (as people write `5xx`).
pub fn code_matches(pattern: &str, code: &str) -> bool {
    fn go(p: &[u8], c: &[u8]) -> bool {
        match (p.first(), c.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], c) || (!c.is_empty() && go(p, &c[1..])),
            (Some(b'?' | b'x' | b'X'), Some(_)) => go(&p[1..], &c[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &c[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), code.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quantiles of a Prometheus histogram over a window, against values computed by hand
    /// as PromQL's histogram_quantile would.
    #[test]
    fn histogram_quantiles_from_bucket_rates() {
        let mut store = Store::default();
        // Seconds 0 and 1: 10 observations a second; 4 up to 0.1, 8 up to 0.2, all up to 0.4.
        for second in 0..2 {
            store.record_buckets(
                second,
                "k/lat",
                &[(0.1, 4.0), (0.2, 8.0), (0.4, 10.0), (f64::INFINITY, 10.0)],
            );
        }
        // Second 2: everything slow, beyond the last finite bound.
        store.record_buckets(
            2,
            "k/lat",
            &[(0.1, 0.0), (0.2, 0.0), (0.4, 0.0), (f64::INFINITY, 5.0)],
        );
        let q = |q: f64, from: u64, to: u64| store.histogram_quantile("k/lat", q, from, to);
        // Rank 10 of 20 falls in (0.1, 0.2], 8 below it: 0.1 + 0.1 * (10 - 8) / (16 - 8).
        assert!((q(0.5, 0, 2).unwrap() - 0.125).abs() < 1e-12);
        // Rank 2 of 20 in the first bucket: 0 + 0.1 * 2 / 8.
        assert!((q(0.1, 0, 2).unwrap() - 0.025).abs() < 1e-12);
        // Rank 19 of 20 in (0.2, 0.4]: 0.2 + 0.2 * (19 - 16) / (20 - 16).
        assert!((q(0.95, 0, 2).unwrap() - 0.35).abs() < 1e-12);
        // Second 2 alone: all in +Inf, so the last finite bound.
        assert_eq!(q(0.5, 2, 3), Some(0.4));
        assert_eq!(q(0.5, 5, 9), None);
        assert_eq!(store.histogram_quantile("k/other", 0.5, 0, 9), None);
    }

    /// The mean of a histogram's observations over a window weighs each scrape's mean by
    /// its observations: 10/s at 0.1 s and 30/s at 0.3 s average 0.25 s, not 0.2 s.
    #[test]
    fn histogram_means_weigh_scrapes_by_observations() {
        let mut store = Store::default();
        store.record_buckets(0, "k/lat", &[(0.5, 10.0), (f64::INFINITY, 10.0)]);
        store.record_metric(0, "k/lat", 0.1);
        store.record_buckets(1, "k/lat", &[(0.5, 30.0), (f64::INFINITY, 30.0)]);
        store.record_metric(1, "k/lat", 0.3);
        let mean = store.histogram_mean("k/lat", 0, 2).unwrap();
        assert!((mean - 0.25).abs() < 1e-12, "{mean}");
        assert_eq!(store.histogram_mean("k/lat", 1, 2), Some(0.3));
        assert_eq!(store.histogram_mean("k/lat", 3, 9), None);
    }

    fn ok(label: &str, second: u64, ms: u64) -> Sample {
        Sample {
            label: label.into(),
            second,
            rt: Duration::from_millis(ms),
            lt: Duration::from_millis(ms / 2),
            ct: None,
            bytes: 100,
            outcome: Outcome::Response {
                status: 200,
                success: true,
                message: None,
            },
            concurrency: 2,
            completed: second,
            extra: None,
        }
    }

    fn llm(
        label: &str,
        second: u64,
        ttft_ms: u64,
        tokens: u64,
        finish: &str,
        good: bool,
    ) -> Sample {
        use crate::metrics::{LlmEnd, Measure};
        let mut measures = vec![
            Measure::new("ttft", ttft_ms as f64 / 1e3),
            Measure::new("output-tokens", tokens as f64),
            Measure::new("tokens-per-s", tokens as f64 / 2.0),
        ];
        measures.extend((0..3).map(|_| Measure::new("itl", 0.02)));
        Sample {
            extra: Some(Box::new(Extra {
                measures,
                llm: Some(LlmEnd {
                    finish_reason: Some(finish.to_owned()),
                    good: Some(good),
                    counted: false,
                }),
                malformed_timing: 1,
            })),
            ..ok(label, second, 2000)
        }
    }

    /// Named distributions merge like the response time: per label and overall, across
    /// closed seconds and merged spans, each in its own unit.
    #[test]
    fn named_distributions_per_label() {
        let mut store = Store::with_retention(Retention {
            keep: 2,
            fine_bytes: 0,
            coarse_bytes: usize::MAX,
        });
        for second in 0..40 {
            store.record(&llm(
                "chat",
                second,
                100 + second,
                10 + second,
                "stop",
                true,
            ));
            store.record(&ok("plain", second, 5));
            store.close_before(second);
        }
        store.record(&llm("chat", 40, 900, 50, "length", false));
        let chat = store.cumulative("chat");
        assert!(
            store.coarse.len() > 1,
            "older seconds were merged into spans"
        );
        let ttft = chat.distribution("ttft").unwrap();
        assert_eq!(ttft.count(), 41);
        assert_eq!(chat.aggregate("ttft", Agg::Max), Some(0.9));
        assert_eq!(chat.aggregate("ttft", Agg::Min), Some(0.1));
        let mean = (0..40).map(|s| 100.0 + s as f64).sum::<f64>() + 900.0;
        assert!((chat.aggregate("ttft", Agg::Avg).unwrap() - mean / 41.0 / 1e3).abs() < 1e-9);
        assert_eq!(chat.aggregate("itl", Agg::Percentile(50.0)), Some(0.02));
        assert_eq!(chat.distribution("itl").unwrap().count(), 123);
        assert_eq!(chat.aggregate("output-tokens", Agg::Max), Some(50.0));
        assert_eq!(chat.aggregate("tokens-per-s", Agg::Min), Some(5.0));
        assert_eq!(chat.goodput_counts(), (40, 41));
        assert!((chat.truncated().unwrap() - 1.0 / 41.0).abs() < 1e-12);
        assert_eq!(chat.malformed_timing(), 41);
        assert_eq!(chat.aggregate("lt", Agg::Avg), Some(1.0));
        // A plain label has only the times; the overall label has everything.
        let plain = store.cumulative("plain");
        assert_eq!(plain.aggregate("ttft", Agg::Avg), None);
        assert_eq!(plain.goodput(), None);
        assert_eq!(plain.truncated(), None);
        assert_eq!(
            store.cumulative("").distribution("ttft").unwrap().count(),
            41
        );
        // A window selecting one distribution merges only that one.
        let only = store.window_selecting(&["chat"], 0, 41, Select::Only(&["ttft"]));
        assert_eq!(only.distribution("ttft").unwrap().count(), 41);
        assert!(only.distribution("rt").is_none() && only.avg_rt().is_none());
        assert_eq!(only.hits(), 41);
    }

    /// A label sent in half the run has its own rate over its active time; the run's is over
    /// the whole measured time.
    #[test]
    fn label_throughput_is_over_its_active_time() {
        let mut store = Store::default();
        for second in 0..10 {
            for _ in 0..10 {
                store.record(&ok("early", second, 5));
                store.record(&ok("late", second + 10, 5));
            }
        }
        store.set_end(Duration::from_secs(20));
        assert_eq!(store.cumulative("early").throughput(), Some(10.0));
        assert_eq!(store.cumulative("late").throughput(), Some(10.0));
        assert_eq!(store.cumulative("").throughput(), Some(10.0));
    }

    #[test]
    fn counts_per_label_and_overall() {
        let mut store = Store::default();
        store.record(&ok("a", 0, 10));
        store.record(&ok("b", 0, 30));
        store.record(&Sample {
            outcome: Outcome::Error {
                kind: "timeout".into(),
                message: "after 5s".into(),
            },
            ..ok("a", 1, 5000)
        });
        store.record(&Sample {
            outcome: Outcome::Response {
                status: 503,
                success: false,
                message: Some("503 Service Unavailable".into()),
            },
            ..ok("a", 1, 2)
        });
        let all = store.cumulative("");
        assert_eq!(
            (all.hits(), all.succ(), all.fail(), all.bytes()),
            (4, 2, 2, 400)
        );
        let a = store.cumulative("a");
        assert_eq!((a.hits(), a.fail()), (3, 2));
        assert_eq!(a.rc("5??"), 1);
        assert_eq!(a.rc("Exception"), 1);
        assert_eq!(a.rc("2*"), 1);
        assert_eq!(a.errors().get("timeout: after 5s"), Some(&1));
        assert_eq!(
            store.cumulative("b").avg_rt(),
            Some(Duration::from_millis(30))
        );
        assert_eq!(store.window("a", 0, 1).hits(), 1);
        assert_eq!(
            store.cumulative("nope").avg_rt(),
            None,
            "no data is not zero"
        );
    }

    #[test]
    fn percentiles_merge_across_closed_seconds() {
        let mut store = Store::default();
        // 1..=1000 ms spread over 10 seconds; close half of them.
        for ms in 1..=1000 {
            store.record(&ok("x", ms % 10, ms));
        }
        store.close_before(5);
        let s = store.cumulative("x");
        let p = |level| s.percentile(level).unwrap().as_secs_f64() * 1000.0;
        assert!((p(50.0) - 500.0).abs() <= 1.0, "p50 {}", p(50.0));
        assert!((p(99.0) - 990.0).abs() <= 1.0, "p99 {}", p(99.0));
        // 3 significant digits: within 0.2% of the exact 999th value.
        assert!((p(99.9) - 999.0).abs() <= 2.0, "p99.9 {}", p(99.9));
        assert_eq!(s.avg_rt(), Some(Duration::from_micros(500_500)));
        let stdev = s.stdev_rt().unwrap().as_secs_f64() * 1000.0;
        assert!((stdev - 288.675).abs() < 0.01, "stdev {stdev}");
        assert_eq!(s.throughput(), Some(100.0));
    }

    #[test]
    fn monitoring_windows_weigh_readings_not_seconds() {
        let mut store = Store::default();
        store.record_metric(0, "srv/cpu", 10.0);
        store.record_metric(0, "srv/cpu", 20.0);
        store.record_metric(2, "srv/cpu", 60.0);
        store.record_metric(3, "srv/cpu", f64::NAN);
        assert_eq!(store.metric_points("srv/cpu"), [(0, 15.0), (2, 60.0)]);
        assert_eq!(store.metric_window("srv/cpu", 0, 3), Some(30.0));
        assert_eq!(
            store.metric_window("srv/cpu", 1, 2),
            None,
            "a gap is no data"
        );
        assert_eq!(store.metric_window("srv/mem", 0, 9), None);
        assert_eq!(store.metric_subjects().collect::<Vec<_>>(), ["srv/cpu"]);
    }

    #[test]
    fn cumulative_throughput_is_over_the_measured_time() {
        let mut store = Store::default();
        // Warm-up: nothing recorded in seconds 0 and 1; 340 samples from 2.0 s to 5.4 s.
        store.record_concurrency(0, "", 3);
        for i in 0..340 {
            store.record(&ok("x", 2 + i / 100, 5));
        }
        let whole = store.cumulative("x").throughput().unwrap();
        assert!(
            (whole - 340.0 / 6.0).abs() < 1e-9,
            "6 whole seconds: {whole}"
        );
        store.set_end(Duration::from_millis(5400));
        let t = store.cumulative("").throughput().unwrap();
        assert!((t - 100.0).abs() < 1e-9, "{t}");
        assert_eq!(store.window("x", 2, 3).throughput(), Some(100.0));
    }

    #[test]
    fn windows_are_weighted_by_samples() {
        let mut store = Store::default();
        // second 0: one slow request; second 1: 99 fast ones. The mean of per-second means
        // would be 500 ms; the sample-weighted mean is ~10.9 ms.
        store.record(&ok("x", 0, 1000));
        for _ in 0..99 {
            store.record(&ok("x", 1, 1));
        }
        store.close_before(2);
        let w = store.window("x", 0, 2);
        assert_eq!(w.avg_rt(), Some(Duration::from_micros(10_990)));
        assert_eq!(w.percentile(50.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn dropped_and_concurrency() {
        let mut store = Store::default();
        store.record_dropped(3, "x", 5);
        store.record_concurrency(3, "x", 7);
        store.record_concurrency(3, "x", 4);
        let s = store.cumulative("x");
        assert_eq!((s.dropped(), s.concurrency(), s.hits()), (5, 7, 0));
        assert_eq!(store.cumulative("").dropped(), 5);
    }

    /// Merged history counts every latency once: the histogram of a long run's merged spans
    /// holds exactly its samples.
    #[test]
    fn merging_spans_counts_each_latency_once() {
        let mut store = Store::with_retention(Retention {
            keep: 5,
            fine_bytes: 4000,
            coarse_bytes: 20_000,
        });
        for second in 0..2000 {
            for k in 0..(second % 90) {
                store.record(&ok("x", second, 1 + k));
            }
            store.close_before(second);
        }
        store.close_before(2000);
        assert!(store.spans().count() < 100, "{}", store.spans().count());
        let all = store.cumulative("x");
        assert_eq!(all.distribution("rt").unwrap().count(), all.hits());
        let merged = store.window("x", 0, 1000);
        assert_eq!(merged.distribution("rt").unwrap().count(), merged.hits());
    }

    #[test]
    fn bounded_error_variety() {
        let mut store = Store::default();
        for i in 0..200 {
            store.record(&Sample {
                outcome: Outcome::Error {
                    kind: "connect".into(),
                    message: format!("port {i}"),
                },
                ..ok("x", 0, 1)
            });
        }
        let s = store.cumulative("x");
        assert_eq!(s.errors().len(), MAX_ERROR_KINDS + 1);
        assert_eq!(s.errors()["other errors"], 150);
    }

    #[test]
    fn response_code_globs() {
        for (p, c, m) in [
            ("5??", "503", true),
            ("5xx", "404", false),
            ("2*", "204", true),
            ("*", "Exception", true),
            ("200", "2000", false),
        ] {
            assert_eq!(code_matches(p, c), m, "{p} vs {c}");
        }
    }
}
