"""``POST /api/recist/evaluate``: the RECIST 1.1 evaluator for EDC systems and scripts.

Thin: parse with :func:`annotations.recist.parse_request`, refuse a baseline that breaks the
selection rules (one reason per offending lesion), evaluate, serialise. See docs/recist.md.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations import recist
from crossread.errors import BadRequest


class EvaluateView(APIView):
    def post(self, request: Request) -> Response:
        try:
            timepoints = recist.parse_request(request.data)
            validation = recist.validate_baseline(timepoints[0])
            if validation:
                raise BadRequest(
                    "The baseline breaks the RECIST 1.1 target selection rules.",
                    errors=[
                        {"lesion": p.lesion_id, "code": str(p.code), "detail": p.detail} for p in validation
                    ],
                )
            evaluation = recist.evaluate(timepoints)
        except recist.RecistInputError as exc:
            raise BadRequest("The request cannot be evaluated.", errors=list(exc.reasons)) from None
        body = recist.evaluation_to_json(evaluation)
        body.pop("baseline_problems", None)  # always empty here: such baselines are refused above
        return Response(body)
