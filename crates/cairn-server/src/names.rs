//! Names the server fills in: the project a client names none for, run ids when a client
//! sends none, and W&B-style display names (`adjective-noun-N`) for runs created without
//! one.

use rand::Rng;

/// The project name W&B's client uses when none is given.
pub(crate) const DEFAULT_PROJECT: &str = "uncategorized";

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brisk", "calm", "clever", "crisp", "dainty", "dark", "dashing", "deft",
    "eager", "fancy", "fresh", "gentle", "glad", "golden", "grand", "hardy", "jolly", "keen",
    "lively", "lucky", "mellow", "misty", "noble", "polar", "proud", "quiet", "rosy", "solar",
    "stellar", "swift", "twilight", "vivid", "warm", "wild",
];

const NOUNS: &[&str] = &[
    "bird", "breeze", "brook", "cairn", "cloud", "comet", "dawn", "dew", "dream", "dust", "field",
    "fire", "flower", "forest", "frost", "glade", "haze", "hill", "lake", "leaf", "meadow", "moon",
    "night", "ocean", "pine", "rain", "river", "sea", "shadow", "sky", "snow", "star", "stone",
    "sun", "valley", "wave", "wind",
];

/// A random 8-character run id of lowercase letters and digits.
pub(crate) fn run_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A display name such as `swift-river-12`, numbered by the run's id.
pub(crate) fn display_name(number: i64) -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let noun = NOUNS[rng.random_range(0..NOUNS.len())];
    format!("{adjective}-{noun}-{number}")
}
