// What makes an attack's budget usable, checked in one place for the command line and the experiment spec alike.
// Budgets are in [0,1] pixel units. An L∞ ε above 1 allows any image at all. ImageNet L2 budgets in the
// literature run from 0.25 to 3 (on 224×224 inputs, whose pixel cube has a diagonal of about 388); 50 is far above
// any of them yet far below that diagonal, so it leaves room for sweeps while catching a budget typed in 0–255 units
// (e.g. 128).

export const MAX_LINF_EPS = 1;
export const MAX_L2_EPS = 50;

export interface AttackBudget {
  norm: 'linf' | 'l2';
  eps: number;
  alpha: number;
  steps: number;
}

export interface BudgetProblem {
  field: 'eps' | 'alpha' | 'steps';
  message: string;
}

/** Everything wrong with a budget, one problem per field; empty when the attack can run. */
export function budgetProblems({ norm, eps, alpha, steps }: AttackBudget): BudgetProblem[] {
  const problems: BudgetProblem[] = [];
  const max = norm === 'linf' ? MAX_LINF_EPS : MAX_L2_EPS;
  const name = norm === 'linf' ? 'L∞' : 'L2';
  if (!Number.isFinite(eps) || eps < 0) problems.push({ field: 'eps', message: `ε must be a number ≥ 0 (pixel units), got ${eps}` });
  else if (eps > max) {
    const why = norm === 'linf' ? 'pixels lie in [0,1], so a larger L∞ ball holds every image' : 'ImageNet L2 budgets are 0.25–3 in pixel units';
    problems.push({ field: 'eps', message: `an ${name} ε lies in [0, ${max}] (${why}), got ${eps}` });
  }
  if (!Number.isFinite(alpha) || !(alpha > 0)) problems.push({ field: 'alpha', message: `the step size must be positive, got ${alpha}` });
  if (!Number.isInteger(steps) || steps < 0) problems.push({ field: 'steps', message: `steps must be a whole number ≥ 0, got ${steps}` });
  return problems;
}
