"""The medallion layers: :mod:`~fraud_mlops.medallion.bronze` (files as landed, with lineage),
:mod:`~fraud_mlops.medallion.silver` (typed, validated by :mod:`~fraud_mlops.medallion.quality` rules,
de-duplicated, bad rows quarantined) and :mod:`~fraud_mlops.medallion.gold` (features and daily
aggregates), with the shared feature library (:mod:`~fraud_mlops.medallion.features`) that training
and scoring both read, and the column contracts (:mod:`~fraud_mlops.medallion.schema`)."""
