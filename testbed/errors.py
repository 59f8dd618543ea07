"""Errors raised by the testbed fixtures."""


class TestbedError(Exception):
    """Base class for testbed failures."""


class FootageError(TestbedError):
    """Building the test footage failed."""


class RtspServerError(TestbedError):
    """The RTSP test server did not start or stop as expected."""


class BrokerError(TestbedError):
    """The Mosquitto test broker did not start or stop as expected."""
