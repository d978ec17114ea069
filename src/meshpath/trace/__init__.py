"""`meshpath trace`: read a capture (pcap, pcapng, tcpdump text) and name what went wrong.

Pure on bytes (parsing and classification); :mod:`meshpath.trace.files` opens files and
:mod:`meshpath.trace.live` captures through a Runner.
"""

from meshpath.trace.analyse import analyse
from meshpath.trace.model import VERDICTS, Endpoint, FlowVerdict, TraceReport

__all__ = ["VERDICTS", "Endpoint", "FlowVerdict", "TraceReport", "analyse"]
