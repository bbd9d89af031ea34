//! Source filters: per-socket filters, their merge into the interface state, and the state-change
//! difference.
//!
//! Heads up! Before working on this file read RFC 3376 §3 (the service interface and the
//! per-socket `(interface, multicast-address, filter-mode, source-list)` state), §3.2 (merging
//! socket states into the interface state) and §5.1 (the table of state-change records).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The filter mode of a socket or interface state (RFC 3376 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMode {
    /// Receive only from the listed sources.
    Include,
    /// Receive from every source except the listed ones.
    Exclude,
}

/// A filter mode and a source list: the state of one socket, or of the interface, for one group.
///
/// `EXCLUDE {}` is an ordinary any-source join; `INCLUDE {}` means "not a member".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFilter {
    /// INCLUDE or EXCLUDE.
    pub mode: FilterMode,
    /// The sources the mode applies to.
    pub sources: BTreeSet<Ipv4Addr>,
}

impl SourceFilter {
    /// `EXCLUDE {}`: an ordinary (any-source) join.
    pub fn any_source() -> SourceFilter {
        SourceFilter {
            mode: FilterMode::Exclude,
            sources: BTreeSet::new(),
        }
    }

    /// `INCLUDE {sources}` (with no sources: not a member).
    pub fn include(sources: impl IntoIterator<Item = Ipv4Addr>) -> SourceFilter {
        SourceFilter {
            mode: FilterMode::Include,
            sources: sources.into_iter().collect(),
        }
    }

    /// `EXCLUDE {sources}`.
    pub fn exclude(sources: impl IntoIterator<Item = Ipv4Addr>) -> SourceFilter {
        SourceFilter {
            mode: FilterMode::Exclude,
            sources: sources.into_iter().collect(),
        }
    }

    /// `INCLUDE {}`: the "not a member" state.
    pub fn none() -> SourceFilter {
        SourceFilter::include([])
    }

    /// Whether a datagram from `source` passes this filter.
    pub fn accepts(&self, source: Ipv4Addr) -> bool {
        match self.mode {
            FilterMode::Include => self.sources.contains(&source),
            FilterMode::Exclude => !self.sources.contains(&source),
        }
    }

    /// `INCLUDE {}`: not a member.
    pub fn is_empty_include(&self) -> bool {
        self.mode == FilterMode::Include && self.sources.is_empty()
    }
}

/// Merges socket filters into the interface state (RFC 3376 §3.2).
///
/// If any socket filter is EXCLUDE, the result is EXCLUDE with the intersection of all EXCLUDE
/// lists minus the union of all INCLUDE lists; otherwise INCLUDE with the union of the INCLUDE
/// lists. No filters at all gives `INCLUDE {}`.
pub fn merge<'a>(filters: impl IntoIterator<Item = &'a SourceFilter>) -> SourceFilter {
    let mut excluded: Option<BTreeSet<Ipv4Addr>> = None;
    let mut included = BTreeSet::new();
    for filter in filters {
        match filter.mode {
            FilterMode::Include => included.extend(filter.sources.iter().copied()),
            FilterMode::Exclude => {
                excluded = Some(match excluded {
                    None => filter.sources.clone(),
                    Some(acc) => acc.intersection(&filter.sources).copied().collect(),
                });
            }
        }
    }
    match excluded {
        Some(ex) => SourceFilter {
            mode: FilterMode::Exclude,
            sources: ex.difference(&included).copied().collect(),
        },
        None => SourceFilter {
            mode: FilterMode::Include,
            sources: included,
        },
    }
}

/// What a change of interface state must report (RFC 3376 §5.1, the table of state-change
/// records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The filter mode changed: a TO_IN or TO_EX record carrying the new mode's source list.
    Mode(SourceFilter),
    /// Same mode, different sources: an ALLOW record (new sources to receive from) and a BLOCK
    /// record (sources no longer to receive from); an empty list means no record.
    Sources {
        /// ALLOW_NEW_SOURCES.
        allow: BTreeSet<Ipv4Addr>,
        /// BLOCK_OLD_SOURCES.
        block: BTreeSet<Ipv4Addr>,
    },
}

/// The state-change records for a change of interface state from `old` to `new`
/// (RFC 3376 §5.1):
///
/// | old          | new          | records                  |
/// |--------------|--------------|--------------------------|
/// | INCLUDE (A)  | INCLUDE (B)  | ALLOW (B-A), BLOCK (A-B) |
/// | EXCLUDE (A)  | EXCLUDE (B)  | ALLOW (A-B), BLOCK (B-A) |
/// | INCLUDE (A)  | EXCLUDE (B)  | TO_EX (B)                |
/// | EXCLUDE (A)  | INCLUDE (B)  | TO_IN (B)                |
pub fn difference(old: &SourceFilter, new: &SourceFilter) -> Change {
    let diff = |a: &BTreeSet<Ipv4Addr>, b: &BTreeSet<Ipv4Addr>| -> BTreeSet<Ipv4Addr> {
        a.difference(b).copied().collect()
    };
    match (old.mode, new.mode) {
        (FilterMode::Include, FilterMode::Include) => Change::Sources {
            allow: diff(&new.sources, &old.sources),
            block: diff(&old.sources, &new.sources),
        },
        (FilterMode::Exclude, FilterMode::Exclude) => Change::Sources {
            allow: diff(&old.sources, &new.sources),
            block: diff(&new.sources, &old.sources),
        },
        _ => Change::Mode(new.clone()),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    fn a(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    #[test]
    fn merge_rules() {
        assert_eq!(merge([]), SourceFilter::none());
        let m = merge(&[SourceFilter::include([a(1)]), SourceFilter::include([a(2)])]);
        assert_eq!(m, SourceFilter::include([a(1), a(2)]));
        let m = merge(&[
            SourceFilter::exclude([a(1), a(2), a(3)]),
            SourceFilter::exclude([a(2), a(3), a(4)]),
            SourceFilter::include([a(3)]),
        ]);
        assert_eq!(m, SourceFilter::exclude([a(2)]));
        let m = merge(&[SourceFilter::any_source(), SourceFilter::include([a(1)])]);
        assert_eq!(m, SourceFilter::any_source());
    }

    #[test]
    fn difference_table() {
        let inc = |s: &[u8]| SourceFilter::include(s.iter().map(|&n| a(n)));
        let exc = |s: &[u8]| SourceFilter::exclude(s.iter().map(|&n| a(n)));
        let set = |s: &[u8]| s.iter().map(|&n| a(n)).collect::<BTreeSet<_>>();
        assert_eq!(
            difference(&inc(&[1, 2]), &inc(&[2, 3])),
            Change::Sources {
                allow: set(&[3]),
                block: set(&[1])
            }
        );
        assert_eq!(
            difference(&exc(&[1, 2]), &exc(&[2, 3])),
            Change::Sources {
                allow: set(&[1]),
                block: set(&[3])
            }
        );
        assert_eq!(difference(&inc(&[1]), &exc(&[2])), Change::Mode(exc(&[2])));
        assert_eq!(difference(&exc(&[1]), &inc(&[])), Change::Mode(inc(&[])));
    }

    fn filter_strategy() -> impl Strategy<Value = SourceFilter> {
        (any::<bool>(), proptest::collection::btree_set(0u8..8, 0..6)).prop_map(|(inc, s)| {
            let sources = s.into_iter().map(a);
            if inc {
                SourceFilter::include(sources)
            } else {
                SourceFilter::exclude(sources)
            }
        })
    }

    proptest! {
        /// The merged filter accepts a source exactly when some socket filter accepts it.
        #[test]
        fn merge_accepts_the_union(filters in proptest::collection::vec(filter_strategy(), 0..5)) {
            let merged = merge(&filters);
            for n in 0..10 {
                prop_assert_eq!(merged.accepts(a(n)), filters.iter().any(|f| f.accepts(a(n))));
            }
        }
    }
}
