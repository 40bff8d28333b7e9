//! The runs the server shows, read through the read side ([`rfm_runs`]):
//! the listing is read afresh on every request (so a new run, or a database
//! that went away, shows at once), and loaded runs are kept by run id (a
//! run with results never changes), with the few figures derived from them
//! computed once ([`Loaded`]). Reads block (files, PostgreSQL): they run on
//! tokio's blocking pool.

use std::sync::{Arc, Mutex, OnceLock};

use rfm_core::money::Money;
use rfm_runs::{Listing, Run, RunSource};

/// How many loaded runs are kept (a movement view needs two).
const KEEP: usize = 4;

/// Why a request cannot be answered from the runs.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No such run, or a run without results: 404.
    #[error("{0}")]
    NotFound(String),
    /// The database or the files cannot be read now: 503, with a banner.
    #[error("{0}")]
    Unavailable(String),
}

impl DataError {
    fn of(e: rfm_runs::Error) -> DataError {
        match e {
            rfm_runs::Error::UnknownRun { .. }
            | rfm_runs::Error::NoResults { .. }
            | rfm_runs::Error::NoRun { .. } => DataError::NotFound(e.to_string()),
            e => DataError::Unavailable(e.to_string()),
        }
    }
}

/// A loaded run and what every page derives from it.
pub struct Loaded {
    pub run: Run,
    /// Customers and revenue per (R, F) cell, index `[r - 1][f - 1]`.
    pub grid_customers: [[u64; 5]; 5],
    pub grid_revenue: [[Money; 5]; 5],
    /// Exact sum of the customers' published monetary.
    pub revenue: Money,
    /// Per sortable column ([`crate::select::COLUMNS`]), the customers'
    /// indexes in ascending order, made on first use: a sorted page of a
    /// large run is then a walk, not a sort.
    orders: [OnceLock<Vec<u32>>; crate::select::COLUMNS.len()],
    /// Every customer id in lower case, each followed by a line feed (ids
    /// hold no control character), and where each starts: an id search is
    /// one scan of contiguous bytes.
    ids: OnceLock<(String, Vec<u32>)>,
}

impl Loaded {
    fn new(run: Run) -> Loaded {
        let mut grid_customers = [[0u64; 5]; 5];
        let mut grid_revenue = [[Money::ZERO; 5]; 5];
        let mut revenue = Money::ZERO;
        for c in &run.customers {
            let (r, f) = (
                usize::from(c.r.clamp(1, 5)) - 1,
                usize::from(c.f.clamp(1, 5)) - 1,
            );
            grid_customers[r][f] += 1;
            grid_revenue[r][f] = grid_revenue[r][f]
                .checked_add(c.monetary)
                .unwrap_or(Money::MAX);
            revenue = revenue.checked_add(c.monetary).unwrap_or(Money::MAX);
        }
        Loaded {
            run,
            grid_customers,
            grid_revenue,
            revenue,
            orders: Default::default(),
            ids: OnceLock::new(),
        }
    }

    /// For each customer, whether its id contains `lower` (lower case).
    pub fn matching(&self, lower: &str) -> Vec<bool> {
        let (hay, starts) = self.ids.get_or_init(|| {
            let mut hay = String::new();
            let mut starts = Vec::with_capacity(self.run.customers.len());
            for c in &self.run.customers {
                starts.push(hay.len() as u32);
                hay.push_str(&c.customer_id.to_lowercase());
                hay.push('\n');
            }
            (hay, starts)
        });
        if lower.is_empty() {
            return vec![true; starts.len()];
        }
        let mut hit = vec![false; starts.len()];
        if lower.contains('\n') {
            return hit;
        }
        for at in memchr::memmem::find_iter(hay.as_bytes(), lower.as_bytes()) {
            if let Some(i) = starts.partition_point(|&s| s as usize <= at).checked_sub(1) {
                hit[i] = true;
            }
        }
        hit
    }

    /// The customers' indexes in ascending order of column `col` (ties by
    /// id); `None` for the id column, the order they are kept in.
    pub fn order(&self, col: usize) -> Option<&[u32]> {
        if col == 0 {
            return None;
        }
        let cell = self.orders.get(col)?;
        Some(cell.get_or_init(|| {
            let c = &self.run.customers;
            // Customers are kept in id order, so ties broken by index are
            // ties broken by id, as [`crate::select::compare`] orders them.
            let mut idx: Vec<u32> = (0..c.len() as u32).collect();
            match crate::select::numeric_key(col) {
                Some(key) => {
                    let mut keyed: Vec<(i128, u32)> =
                        idx.iter().map(|&i| (key(&c[i as usize]), i)).collect();
                    keyed.sort_unstable();
                    idx = keyed.into_iter().map(|(_, i)| i).collect();
                }
                None => idx.sort_unstable_by(|&a, &b| {
                    crate::select::compare(col, &c[a as usize], &c[b as usize])
                }),
            }
            idx
        }))
    }

    pub fn run_id(&self) -> &str {
        self.run.run_id()
    }
}

/// The source and the kept runs, shared by every request.
pub struct Data {
    source: Box<dyn RunSource + Sync>,
    describe: String,
    kept: Mutex<Vec<(String, Arc<Loaded>)>>,
}

impl Data {
    pub fn new(source: Box<dyn RunSource + Sync>) -> Data {
        let describe = source.describe();
        Data {
            source,
            describe,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// Where the runs are read (`/tmp/out`, `the database at …`).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Every run, newest first (blocking).
    pub fn list(&self) -> Result<Listing, DataError> {
        self.source.list().map_err(DataError::of)
    }

    /// The run `run` names, or the latest one (blocking). The listing is
    /// read every time: it says which run is the latest, and whether the
    /// source can still be read.
    pub fn run(&self, run: Option<&str>) -> Result<Arc<Loaded>, DataError> {
        let listing = self.list()?;
        let entry = match run {
            Some(id) => listing
                .runs
                .iter()
                .find(|e| e.run_id() == id || e.label == id),
            None => listing.runs.iter().find(|e| e.latest),
        };
        let Some(entry) = entry else {
            return Err(match run {
                Some(id) => DataError::NotFound(format!(
                    "no run {id:?} in {}; the Runs page lists the runs",
                    self.describe
                )),
                None => DataError::NotFound(format!(
                    "no succeeded run in {} yet; run `rfm run FILE` first",
                    self.describe
                )),
            });
        };
        if !entry.status.has_results() {
            return Err(DataError::NotFound(format!(
                "run {} is {}: it has no results",
                entry.run_id(),
                entry.status
            )));
        }
        let key = entry.run_id().to_string();
        if let Some(hit) = self.kept().iter().find(|(k, _)| *k == key) {
            return Ok(hit.1.clone());
        }
        let loaded = Arc::new(Loaded::new(self.source.load(entry).map_err(DataError::of)?));
        // Every column's order and the id index, made off the request path
        // so the first sort of a large run by a column does not wait for it.
        let warm = loaded.clone();
        let _ = std::thread::Builder::new()
            .name("rfm-web-orders".into())
            .spawn(move || {
                for col in 1..crate::select::COLUMNS.len() {
                    warm.order(col);
                }
                warm.matching("");
            });
        let mut kept = self.kept();
        kept.retain(|(k, _)| *k != key);
        kept.insert(0, (key, loaded.clone()));
        kept.truncate(KEEP);
        Ok(loaded)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<(String, Arc<Loaded>)>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs `f` on the blocking pool with the shared data.
pub async fn blocking<T: Send + 'static>(
    data: &Arc<Data>,
    f: impl FnOnce(&Data) -> Result<T, DataError> + Send + 'static,
) -> Result<T, DataError> {
    let data = data.clone();
    tokio::task::spawn_blocking(move || f(&data))
        .await
        .unwrap_or_else(|e| Err(DataError::Unavailable(format!("internal error: {e}"))))
}

/// The index of customer `id` in the run (customers are in id byte order).
pub fn index_of(loaded: &Loaded, id: &str) -> Option<usize> {
    loaded
        .run
        .customers
        .binary_search_by(|c| c.customer_id.as_str().cmp(id))
        .ok()
}
