"""kato_web_client: a typed client for kato-web.

    from kato_web_client import Client

    with Client("http://127.0.0.1:8000") as kato, kato.session("alice", recall_threshold=0.1) as s:
        for event in (["hello"], ["world"], ["again"]):
            s.observe(event)
        s.learn()
        s.observe(["hello"]); s.observe(["world"])
        print(s.predictions()[0].future)      # [['again']]
"""
from kato_web_client.client import Client, Session
from kato_web_client.errors import (BadRequest, ConfigurationError, ConnectionFailed, Forbidden, KatoError,
                                    NotFound, PayloadTooLarge, ServerError, ServiceUnavailable, SessionNotFound,
                                    Unauthorized, ValidationError)
from kato_web_client.models import (FinalizeResult, FuturePotential, Health, LearnResult, ObserveResult,
                                    ObserveSequenceResult, Pattern, Prediction, Predictions, SequenceItemResult,
                                    SessionInfo, SymbolStats)

__version__ = "0.1.0"
__all__ = [
    "Client", "Session",
    "KatoError", "BadRequest", "ConfigurationError", "ConnectionFailed", "Forbidden", "NotFound",
    "PayloadTooLarge", "ServerError", "ServiceUnavailable", "SessionNotFound", "Unauthorized", "ValidationError",
    "FinalizeResult", "FuturePotential", "Health", "LearnResult", "ObserveResult", "ObserveSequenceResult",
    "Pattern", "Prediction", "Predictions", "SequenceItemResult", "SessionInfo", "SymbolStats",
]
