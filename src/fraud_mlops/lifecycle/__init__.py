"""The model lifecycle: :mod:`~fraud_mlops.lifecycle.training` (time split, models, MLflow logging),
:mod:`~fraud_mlops.lifecycle.metrics` (average precision, card precision top-k),
:mod:`~fraud_mlops.lifecycle.gate` (challenger/champion validation gate and promotion),
:mod:`~fraud_mlops.lifecycle.scoring` (batch scoring with ``@champion``),
:mod:`~fraud_mlops.lifecycle.monitoring` (PSI drift, quality once labels arrive, alert and retraining
trigger) and :mod:`~fraud_mlops.lifecycle.tracking` (MLflow set-up per target)."""
