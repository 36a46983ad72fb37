//! [`Store`]: the per-second, per-label measurement store.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

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
    pub label: String,
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
    rt_sum_us: f64,
    rt_sum_sq_us: f64,
    lt_sum_us: f64,
    ct_sum_us: f64,
    ct_count: u64,
    codes: Codes,
    errors: Tally,
    dropped: u64,
    max_concurrency: u64,
    /// Responses completed in this second (by completion time, not by when they were due).
    served: u64,
    /// Requests cut while in flight (in `hits`, neither `succ` nor `fail`).
    unfinished: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.hits += other.hits;
        self.succ += other.succ;
        self.fail += other.fail;
        self.bytes += other.bytes;
        self.rt_sum_us += other.rt_sum_us;
        self.rt_sum_sq_us += other.rt_sum_sq_us;
        self.lt_sum_us += other.lt_sum_us;
        self.ct_sum_us += other.ct_sum_us;
        self.ct_count += other.ct_count;
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

/// Latencies a bucket keeps as they are, before it needs a histogram: a label with a few
/// requests a second costs bytes, not the tens of kilobytes of a dense histogram.
const FEW: usize = 64;

/// One label's measurements in one second (or a span of seconds). Latencies are kept as
/// they are while few, then in a dense histogram while the second is open, and in
/// HdrHistogram's compact V2 encoding once it is closed, so a long run's memory grows by
/// little per second however many requests it sends.
#[derive(Clone, Debug)]
struct Bucket {
    counts: Counts,
    /// Microseconds, while there are at most [`FEW`] and no histogram.
    few: Vec<u32>,
    live: Option<Box<Histogram<u64>>>,
    closed: Box<[u8]>,
}

impl Bucket {
    fn new() -> Self {
        Self {
            counts: Counts::default(),
            few: Vec::new(),
            live: None,
            closed: Box::default(),
        }
    }

    /// What the bucket holds on the heap, about (a closed one: no dense histogram).
    fn heap_bytes(&self) -> usize {
        let names = |t: &Tally| t.0.iter().map(|(k, _)| 48 + k.len()).sum::<usize>();
        let live = self.live.as_ref().map_or(0, |h| 8 * h.distinct_values());
        // With the allocator's own overhead per allocation.
        let allocation = |bytes: usize| if bytes == 0 { 0 } else { bytes.max(16) + 16 };
        allocation(self.closed.len())
            + allocation(self.few.capacity() * 4)
            + allocation(self.counts.codes.0.capacity() * 16)
            + names(&self.counts.errors)
            + live
    }

    fn has_histogram(&self) -> bool {
        self.live.is_some() || !self.closed.is_empty()
    }

    fn record(&mut self, rt: u64) {
        if !self.has_histogram()
            && self.few.len() < FEW
            && let Ok(us) = u32::try_from(rt)
        {
            self.few.push(us);
            return;
        }
        let few = std::mem::take(&mut self.few);
        let live = self.live.get_or_insert_with(|| Box::new(new_histogram()));
        for us in few {
            live.record(u64::from(us))
                .expect("auto-resizing histograms accept any value");
        }
        live.record(rt)
            .expect("auto-resizing histograms accept any value");
    }

    /// Encodes the histogram compactly (with what an earlier close encoded); few latencies
    /// stay as they are.
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
        for &us in &self.few {
            histogram
                .record(u64::from(us))
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

    fn merge_into(&self, counts: &mut Counts, histogram: &mut Histogram<u64>) {
        counts.add(&self.counts);
        self.histogram_into(histogram);
    }

    /// One closed bucket of several (seconds of the same label): counts added, latencies
    /// merged into one histogram, encoded once.
    fn merged(buckets: impl Iterator<Item = Bucket>) -> Bucket {
        let mut out = Bucket::new();
        let mut dense: Option<Histogram<u64>> = None;
        for b in buckets {
            out.counts.add(&b.counts);
            if dense.is_none() && !b.has_histogram() && out.few.len() + b.few.len() <= FEW {
                out.few.extend_from_slice(&b.few);
                continue;
            }
            let h = dense.get_or_insert_with(|| {
                let mut h = new_histogram();
                for us in out.few.drain(..) {
                    h.record(u64::from(us))
                        .expect("auto-resizing histograms accept any value");
                }
                h
            });
            b.histogram_into(h);
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

    /// A store that keeps its memory bounded (see [`Retention`]).
    pub fn with_retention(retention: Retention) -> Self {
        Self {
            retention: Some(retention),
            ..Self::default()
        }
    }

    fn bucket(&mut self, second: u64, label: &str) -> &mut Bucket {
        let index = self.label_index(label);
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
        for label in ["", sample.label.as_str()] {
            let bucket = self.bucket(sample.second, label);
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
            let rt = micros(sample.rt);
            c.rt_sum_us += rt as f64;
            c.rt_sum_sq_us += (rt as f64) * (rt as f64);
            c.lt_sum_us += micros(sample.lt) as f64;
            if let Some(ct) = sample.ct {
                c.ct_sum_us += ct.as_micros() as f64;
                c.ct_count += 1;
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
            bucket.record(rt);
            if label.is_empty() && sample.label.is_empty() {
                break;
            }
        }
        if sample.completed > sample.second && sample.outcome.completed() {
            for label in ["", sample.label.as_str()] {
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
        let mut counts = Counts::default();
        let mut histogram = new_histogram();
        let mut span = self.merge_window(labels, from, to, &mut counts, &mut histogram);
        if let Some(overlay) = &self.overlay {
            let more = overlay.merge_window(labels, from, to, &mut counts, &mut histogram);
            span = span.max(more);
        }
        Snapshot {
            counts,
            histogram,
            seconds: span as f64,
        }
    }

    /// Merges `labels`' buckets of seconds `from..to` into `counts` and `histogram`; returns
    /// how many seconds that spans (0 when no label was seen).
    fn merge_window<S: AsRef<str>>(
        &self,
        labels: &[S],
        from: u64,
        to: u64,
        counts: &mut Counts,
        histogram: &mut Histogram<u64>,
    ) -> u64 {
        let to = to.min(self.seconds());
        let indices: Vec<usize> = labels
            .iter()
            .filter_map(|l| self.labels.iter().position(|x| x == l.as_ref()))
            .collect();
        let mut merge = |row: &[Option<Bucket>]| {
            for &index in &indices {
                if let Some(Some(bucket)) = row.get(index) {
                    bucket.merge_into(counts, histogram);
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
    pub fn cumulative(&self, label: &str) -> Snapshot {
        let mut snapshot = self.window(label, 0, self.seconds());
        if let Some(end) = self.end {
            let first = self.first_second().unwrap_or(0) as f64;
            let measured = end.as_secs_f64() - first;
            if measured > 0.0 {
                snapshot.seconds = measured;
            }
        }
        snapshot
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
    histogram: Histogram<u64>,
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

    fn mean_us(&self, sum: f64) -> Option<Duration> {
        (self.counts.hits > 0).then(|| Duration::from_secs_f64(sum / self.counts.hits as f64 / 1e6))
    }

    /// `None` when there were no samples: a KPI without data is never a silent zero.
    pub fn avg_rt(&self) -> Option<Duration> {
        self.mean_us(self.counts.rt_sum_us)
    }
    pub fn avg_lt(&self) -> Option<Duration> {
        self.mean_us(self.counts.lt_sum_us)
    }
    /// `None` unless connect times were measured.
    pub fn avg_ct(&self) -> Option<Duration> {
        (self.counts.ct_count > 0).then(|| {
            Duration::from_secs_f64(self.counts.ct_sum_us / self.counts.ct_count as f64 / 1e6)
        })
    }

    /// Population standard deviation of the response time.
    pub fn stdev_rt(&self) -> Option<Duration> {
        let n = self.counts.hits as f64;
        (self.counts.hits > 0).then(|| {
            let mean = self.counts.rt_sum_us / n;
            let var = (self.counts.rt_sum_sq_us / n - mean * mean).max(0.0);
            Duration::from_secs_f64(var.sqrt() / 1e6)
        })
    }

    /// The merged latency histogram (microseconds) in HdrHistogram's V2 encoding, base64;
    /// `None` without samples.
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

    /// Any percentile of the response time, from the merged histogram.
    pub fn percentile(&self, level: f64) -> Option<Duration> {
        (self.counts.hits > 0)
            .then(|| Duration::from_micros(self.histogram.value_at_quantile(level / 100.0)))
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
        }
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
        assert_eq!(all.histogram.len(), all.hits());
        let merged = store.window("x", 0, 1000);
        assert_eq!(merged.histogram.len(), merged.hits());
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
