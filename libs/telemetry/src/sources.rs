//! Metrics another process keeps, served with this process's own: the data
//! plane's host (`paved-runtime`) counts the requests through workload
//! proxies, and the provisioner's `/metrics` fetches them at each scrape,
//! so that Prometheus scrapes one address per service as before.

use futures::future::BoxFuture;
use std::{
    collections::HashMap,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Fetches a source's families: OpenMetrics text without `# EOF`; None
/// when it cannot be reached (the scrape goes on without it).
pub type Fetch = Arc<dyn Fn() -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// How long a source gets to answer a scrape.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

static SOURCES: LazyLock<Mutex<Vec<(u64, Fetch)>>> = LazyLock::new(Mutex::default);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A registered source; dropping it takes the source away.
pub struct Source(u64);

impl Drop for Source {
    fn drop(&mut self) {
        SOURCES.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _)| *id != self.0);
    }
}

/// Serves `fetch`'s families on this process's `/metrics` while the
/// returned [`Source`] lives.
pub fn register_source(fetch: Fetch) -> Source {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    SOURCES.lock().unwrap_or_else(|p| p.into_inner()).push((id, fetch));
    Source(id)
}

/// `own` (this process's registry, encoded) and every source's families,
/// as one OpenMetrics text.
pub(crate) async fn gather(own: String) -> String {
    let fetches: Vec<Fetch> = SOURCES.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(_, f)| f.clone()).collect();
    if fetches.is_empty() {
        return own;
    }
    let mut texts = vec![own];
    for fetch in fetches {
        if let Ok(Some(text)) = tokio::time::timeout(FETCH_TIMEOUT, fetch()).await {
            texts.push(text);
        }
    }
    merge(&texts)
}

/// Joins OpenMetrics texts into one: each family once, with the metadata of
/// the first text that has it and all its samples together (OpenMetrics
/// wants them so). A counter's or histogram's sample that appears in more
/// than one text is summed, as one registry would have counted it
/// (platforms in one process share their series: see the crate's
/// documentation); any other keeps the first text's value.
pub fn merge(texts: &[String]) -> String {
    #[derive(Default)]
    struct Family {
        metadata: Vec<String>,
        summed: bool,
        samples: Vec<(String, String)>,
        /// series → its place in `samples`
        index: HashMap<String, usize>,
    }
    let mut order: Vec<String> = Vec::new();
    let mut families: HashMap<String, Family> = HashMap::new();
    for text in texts {
        let mut current = String::new();
        let mut owned: Vec<String> = Vec::new();
        for line in text.lines() {
            if line == "# EOF" || line.is_empty() {
                continue;
            }
            if let Some(meta) = line.strip_prefix("# ") {
                let mut words = meta.split_whitespace();
                let (what, name) = (words.next().unwrap_or_default(), words.next().unwrap_or_default().to_string());
                if !families.contains_key(&name) {
                    order.push(name.clone());
                    families.insert(name.clone(), Family::default());
                    owned.push(name.clone());
                }
                if owned.contains(&name)
                    && let Some(family) = families.get_mut(&name)
                {
                    family.metadata.push(line.to_string());
                    if what == "TYPE" {
                        family.summed = matches!(words.next(), Some("counter" | "histogram" | "summary"));
                    }
                }
                current = name;
                continue;
            }
            let Some(family) = families.get_mut(&current) else { continue };
            // `name{labels} value`: label values may hold spaces, so the
            // series ends at the closing brace when there is one.
            let split = match line.rfind('}') {
                Some(brace) => brace + 1,
                None => line.find(' ').unwrap_or(line.len()),
            };
            let (series, value) = (line[..split].to_string(), line[split..].trim().to_string());
            match family.index.get(&series) {
                Some(&at) if family.summed => {
                    let existing = &mut family.samples[at].1;
                    if let (Ok(a), Ok(b)) = (existing.parse::<f64>(), value.parse::<f64>()) {
                        *existing = (a + b).to_string();
                    }
                }
                Some(_) => {}
                None => {
                    family.index.insert(series.clone(), family.samples.len());
                    family.samples.push((series, value));
                }
            }
        }
    }
    let mut out = String::new();
    for name in order {
        let family = &families[&name];
        for line in &family.metadata {
            out.push_str(line);
            out.push('\n');
        }
        for (series, value) in &family.samples {
            out.push_str(&format!("{series} {value}\n"));
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_families_and_sums_shared_series() {
        let own = "# HELP paved_up Up.\n# TYPE paved_up gauge\npaved_up 1\n# EOF\n".to_string();
        let gauge = "# HELP paved_up Up.\n# TYPE paved_up gauge\npaved_up 1\n".to_string();
        let a = "# HELP paved_proxy_requests Requests.\n# TYPE paved_proxy_requests counter\npaved_proxy_requests_total{workload=\"dev/a b\",class=\"2xx\"} 3\n".to_string();
        let b = "# HELP paved_proxy_requests Requests.\n# TYPE paved_proxy_requests counter\npaved_proxy_requests_total{workload=\"dev/a b\",class=\"2xx\"} 4\npaved_proxy_requests_total{workload=\"dev/c\",class=\"5xx\"} 1\n".to_string();
        let merged = merge(&[own, a, gauge, b]);
        assert_eq!(
            merged,
            "# HELP paved_up Up.\n# TYPE paved_up gauge\npaved_up 1\n\
             # HELP paved_proxy_requests Requests.\n# TYPE paved_proxy_requests counter\n\
             paved_proxy_requests_total{workload=\"dev/a b\",class=\"2xx\"} 7\n\
             paved_proxy_requests_total{workload=\"dev/c\",class=\"5xx\"} 1\n# EOF\n"
        );
    }

    #[tokio::test]
    async fn a_source_is_served_while_it_is_registered() {
        let source = register_source(Arc::new(|| {
            Box::pin(async { Some("# TYPE paved_test_source gauge\npaved_test_source 42\n".to_string()) }) as BoxFuture<'static, _>
        }));
        assert!(gather(String::new()).await.contains("paved_test_source 42\n"));
        drop(source);
        assert!(!gather(String::new()).await.contains("paved_test_source"));
    }
}
