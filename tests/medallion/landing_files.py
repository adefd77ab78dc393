"""Landing files for the bronze and silver tests: good rows, and rows that break each silver rule."""

from __future__ import annotations

import gzip

from fraud_mlops.medallion.bronze import LANDING_COLUMNS

HEADER = ",".join(LANDING_COLUMNS)


def write_landing(folder, name, lines, header=HEADER, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header, *lines]) + "\n"
    path = folder / name
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


GOOD_DAY_1 = [
    "0,2018-04-01 00:00:31,596,3156,57.16,31,0,0,0",
    "1,2018-04-01 00:02:10,4961,3412,81.51,130,0,0,0",
    "2,2018-04-01 00:07:56,2,1365,246.00,476,0,1,1",
]
BAD_DAY_2 = [
    "3,2018-04-02 00:00:01,10,20,10.00,86401,1,0,0",  # good
    ",2018-04-02 00:00:02,10,20,10.00,86402,1,0,0",  # no transaction id
    "5,2018-04-02 25:61:00,10,20,10.00,86403,1,0,0",  # unparseable timestamp
    "9,2018-4-02 00:00:09,10,20,10.00,86409,1,0,0",  # near-miss timestamp (Spark's parser would raise)
    "6,2018-04-02 00:00:04,10,20,-3.50,86404,1,0,0",  # negative amount
    "7,2018-04-02 00:00:05,10,20,abc,86405,1,2,0",  # amount not a number, fraud not 0/1
    "8,2018-04-02 00:00:06,10,20",  # malformed: too few fields
    "3,2018-04-02 00:00:01,10,20,10.00,86401,1,0,0",  # duplicate inside the file
    "0,2018-04-01 00:00:31,596,3156,57.16,31,0,0,0",  # duplicate of a key landed in day 1
]
