//! Learned ranking over the fused candidates of a search.
//!
//! Pure computation: feature vectors of (question, passage) pairs, a linear ranker trained
//! pairwise from feedback, and offline metrics on judged events. No I/O, no clock, no models:
//! the engine gathers the signals, stores events and rankers, and decides what to promote.

pub mod features;
pub mod model;

pub use features::{
    CandidateSignals, FEATURE_NAMES, N_FEATURES, QuerySignals, StoredCandidate, feature_index, features, terms,
};
pub use model::{Event, FeedbackMetrics, Label, LinearRanker, TrainError, TrainOptions, TrainStats, evaluate, train};
