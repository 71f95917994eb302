"""Everything a report shows, computed from a run directory (never refitted) and then rendered.

``rundata`` reads a run once and owns the definitions every table shares (complete seeds, the prediction
stack, fold-level scores, the design); ``scoring`` scores stacks (pooled and fold-level, the moment-sum
engine); ``summary``, ``significance``, ``units``, ``ranking``, ``bootstrap``, ``paired``, ``ceiling`` and
``analysis`` compute tables; ``report.build_report`` computes each once (a new report table is added
there); ``tables``, ``plots`` and ``html`` only format. Reports import neither ``models`` nor torch.
"""
