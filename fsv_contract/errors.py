"""Named errors of the MQTT contract."""


class ContractError(Exception):
    """Base class of every contract violation; the message says what is wrong."""


class InvalidTopic(ContractError):
    """A topic is not one of the contract's topics, or a level is malformed."""


class InvalidPayload(ContractError):
    """A payload is not valid JSON, too large or too deep, or fails its model."""
