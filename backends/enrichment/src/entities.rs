//! Named entities from a gazetteer: cities and countries (GeoNames, CC BY
//! 4.0), organisations and people (lists written for this repository), all
//! under `data/` (see `data/README.md`) and embedded in the binary.
//!
//! Matching is exact and case-sensitive on the cleaned (NFC) text, on word
//! boundaries (the characters around a match are not letters or digits), so
//! `Paris` matches in `Paris, France` but not in `Parisian` or `paris`. Names
//! are searched all at once with an Aho-Corasick automaton; where matches
//! overlap, the earliest then the longest wins (`New York City` over `York`,
//! `George Washington` the person over `Washington` the city). A name listed
//! under several kinds keeps the first of person, organisation, country,
//! city. The result lists each entity once, in order of first appearance,
//! with its number of occurrences.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
pub use backend_api::enrichment::{Entity, EntityKind};

const CITIES: &str = include_str!("../data/cities.tsv");
const COUNTRIES: &str = include_str!("../data/countries.tsv");
const ORGANIZATIONS: &str = include_str!("../data/organizations.tsv");
const PEOPLE: &str = include_str!("../data/people.tsv");

struct Gazetteer {
    matcher: Option<AhoCorasick>,
    entries: Vec<(String, EntityKind, Option<String>)>,
}

static GAZETTEER: LazyLock<Gazetteer> = LazyLock::new(|| {
    let mut entries: Vec<(String, EntityKind, Option<String>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let sources = [
        (PEOPLE, EntityKind::Person),
        (ORGANIZATIONS, EntityKind::Organization),
        (COUNTRIES, EntityKind::Country),
        (CITIES, EntityKind::City),
    ];
    for (text, kind) in sources {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut fields = line.split('\t');
            let Some(name) = fields.next().map(str::trim).filter(|n| !n.is_empty()) else {
                continue;
            };
            if !seen.insert(name) {
                continue;
            }
            let country = match kind {
                EntityKind::City | EntityKind::Country => fields.next().map(str::to_owned),
                _ => None,
            };
            entries.push((name.to_owned(), kind, country));
        }
    }
    let matcher = AhoCorasick::new(entries.iter().map(|(name, _, _)| name)).ok();
    Gazetteer { matcher, entries }
});

/// Number of names in the gazetteer.
pub fn gazetteer_size() -> usize {
    GAZETTEER.entries.len()
}

/// The entities named in `text` (see the module docs).
pub fn find(text: &str) -> Vec<Entity> {
    let Some(matcher) = GAZETTEER.matcher.as_ref() else {
        return Vec::new();
    };
    // every match on word boundaries, then earliest-longest without overlap
    let mut matches: Vec<(usize, usize, usize)> = matcher
        .find_overlapping_iter(text)
        .filter(|m| on_boundaries(text, m.start(), m.end()))
        .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
        .collect();
    matches.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut found: Vec<Entity> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut covered_to = 0;
    for (start, end, pattern) in matches {
        if start < covered_to {
            continue;
        }
        covered_to = end;
        if let Some(&i) = index.get(&pattern) {
            found[i].count += 1;
            continue;
        }
        let Some((name, kind, country)) = GAZETTEER.entries.get(pattern) else {
            continue;
        };
        index.insert(pattern, found.len());
        found.push(Entity {
            text: name.clone(),
            kind: *kind,
            count: 1,
            country: country.clone(),
        });
    }
    found
}

fn on_boundaries(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(String, EntityKind, usize)> {
        find(text)
            .into_iter()
            .map(|e| (e.text, e.kind, e.count))
            .collect()
    }

    #[test]
    fn gazetteer_is_loaded() {
        assert!(gazetteer_size() > 1700, "{}", gazetteer_size());
    }

    #[test]
    fn finds_cities_countries_organisations_and_people() {
        let found = find(
            "Marie Curie worked in Paris, France. UNESCO and the World Health Organization met in Paris.",
        );
        let summary: Vec<(&str, EntityKind, usize)> = found
            .iter()
            .map(|e| (e.text.as_str(), e.kind, e.count))
            .collect();
        assert_eq!(
            summary,
            [
                ("Marie Curie", EntityKind::Person, 1),
                ("Paris", EntityKind::City, 2),
                ("France", EntityKind::Country, 1),
                ("UNESCO", EntityKind::Organization, 1),
                ("World Health Organization", EntityKind::Organization, 1),
            ]
        );
        assert_eq!(found[1].country.as_deref(), Some("FR"));
        assert_eq!(found[0].country, None);
    }

    #[test]
    fn longest_match_and_word_boundaries() {
        assert_eq!(
            kinds("George Washington never saw New York City."),
            [
                ("George Washington".to_owned(), EntityKind::Person, 1),
                ("New York City".to_owned(), EntityKind::City, 1),
            ]
        );
        assert_eq!(kinds("Parisian parks; paris; Tokyo2020"), []);
        assert_eq!(
            kinds("São Paulo and Sao Paulo")
                .iter()
                .map(|(_, k, _)| *k)
                .collect::<Vec<_>>(),
            [EntityKind::City, EntityKind::City]
        );
    }
}
