//! Split-brain verdicts: from its own view alone (which expected nodes it can reach), a
//! node decides whether its side of a partition keeps accepting new unique
//! registrations. The strategies are chosen so that two sides that cannot talk reach
//! complementary verdicts: at most one side keeps writing.

use std::collections::BTreeSet;

/// How a node decides whether its side of a partition keeps writing.
///
/// ```
/// use roster_proto::nodes::{SplitBrainStrategy, verdict};
/// use std::collections::BTreeSet;
///
/// let expected: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
/// let side: BTreeSet<String> = ["a", "b"].map(String::from).into();
/// assert!(verdict(&SplitBrainStrategy::Majority, &expected, &side, None).keeps_writing);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SplitBrainStrategy {
    /// A side keeps writing if it holds a strict majority of the expected nodes. Ties
    /// lose: a 2-2 split stops both sides.
    #[default]
    Majority,
    /// The side holding the oldest running node keeps writing (oldest by start time, as
    /// both sides knew it before the split). If the oldest node is unreachable from both
    /// sides (it died), neither side writes until it is dropped from the expected nodes.
    OldestNode,
    /// The side holding the named node keeps writing.
    ConfiguredPrimary(String),
}

impl std::fmt::Display for SplitBrainStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Majority => f.write_str("majority"),
            Self::OldestNode => f.write_str("oldest node"),
            Self::ConfiguredPrimary(name) => write!(f, "configured primary {name}"),
        }
    }
}

/// What a node concluded about its side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether this side keeps accepting new unique registrations.
    pub keeps_writing: bool,
    /// The node the verdict depends on: the oldest node ([`SplitBrainStrategy::OldestNode`])
    /// or the primary ([`SplitBrainStrategy::ConfiguredPrimary`]), wherever it is; `None`
    /// under [`SplitBrainStrategy::Majority`], or when no expected node is known to be the
    /// oldest.
    pub deciding_node: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// The verdict of a node whose side (itself and the nodes it reaches) is `side`, in a
/// cluster expected to be `expected`. `oldest` is the name of the oldest node of the
/// expected cluster as this node knows it (for [`SplitBrainStrategy::OldestNode`]).
pub fn verdict(
    strategy: &SplitBrainStrategy,
    expected: &BTreeSet<String>,
    side: &BTreeSet<String>,
    oldest: Option<&str>,
) -> Verdict {
    let here = expected.intersection(side).count();
    match strategy {
        SplitBrainStrategy::Majority => {
            let keeps_writing = 2 * here > expected.len();
            Verdict {
                keeps_writing,
                deciding_node: None,
                reason: format!(
                    "this side reaches {here} of {} expected nodes: {}",
                    expected.len(),
                    if keeps_writing {
                        "a strict majority"
                    } else {
                        "not a strict majority"
                    }
                ),
            }
        }
        SplitBrainStrategy::OldestNode => match oldest {
            Some(oldest) if side.contains(oldest) => Verdict {
                keeps_writing: true,
                deciding_node: Some(oldest.to_owned()),
                reason: format!("this side holds the oldest node, {oldest}"),
            },
            Some(oldest) => Verdict {
                keeps_writing: false,
                deciding_node: Some(oldest.to_owned()),
                reason: format!("the oldest node, {oldest}, is not on this side"),
            },
            None => Verdict {
                keeps_writing: false,
                deciding_node: None,
                reason: "no expected node is known to be the oldest".to_owned(),
            },
        },
        SplitBrainStrategy::ConfiguredPrimary(primary) => {
            let keeps_writing = side.contains(primary);
            Verdict {
                keeps_writing,
                deciding_node: Some(primary.clone()),
                reason: if keeps_writing {
                    format!("this side holds the primary, {primary}")
                } else {
                    format!("the primary, {primary}, is not on this side")
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Every split of an expected cluster into two sides gives complementary verdicts:
    /// never both sides writing; with the oldest or the primary alive, exactly one.
    #[test]
    fn every_split_gives_complementary_verdicts() {
        let names = ["a", "b", "c", "d", "e"];
        for n in 1..=names.len() {
            let expected = set(&names[..n]);
            for mask in 0u32..(1 << n) {
                let left: BTreeSet<String> = (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| names[i].to_string())
                    .collect();
                let right: BTreeSet<String> = expected.difference(&left).cloned().collect();
                for strategy in [
                    SplitBrainStrategy::Majority,
                    SplitBrainStrategy::OldestNode,
                    SplitBrainStrategy::ConfiguredPrimary("a".into()),
                ] {
                    let l = verdict(&strategy, &expected, &left, Some("a"));
                    let r = verdict(&strategy, &expected, &right, Some("a"));
                    let deciding = (strategy != SplitBrainStrategy::Majority).then(|| "a".into());
                    assert_eq!((&l.deciding_node, &r.deciding_node), (&deciding, &deciding));
                    assert!(
                        !(l.keeps_writing && r.keeps_writing),
                        "{strategy}: {left:?} and {right:?} both write"
                    );
                    if strategy != SplitBrainStrategy::Majority {
                        assert!(
                            l.keeps_writing || r.keeps_writing,
                            "{strategy}: nobody writes"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn majority_ties_lose() {
        let expected = set(&["a", "b", "c", "d"]);
        let v = verdict(
            &SplitBrainStrategy::Majority,
            &expected,
            &set(&["a", "b"]),
            None,
        );
        assert!(!v.keeps_writing);
        assert_eq!(
            v.reason,
            "this side reaches 2 of 4 expected nodes: not a strict majority"
        );
    }
}
