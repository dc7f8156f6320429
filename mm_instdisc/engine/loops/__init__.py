from .time_budget_loop import (TimeBudgetLR, TimeBudgetTrainLoop,
                               apply_time_budget, check_budget_args,
                               plan_iterations)

__all__ = [
    'TimeBudgetTrainLoop', 'TimeBudgetLR', 'apply_time_budget',
    'check_budget_args', 'plan_iterations'
]
