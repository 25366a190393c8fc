"""How a call to a cloud provider is authorised: signed with AWS SigV4, or given a short-lived Google token.

Adapters build the call; the authoriser of the target's credential (built once per credential, kept across
routing tables while the credential is unchanged) adds what proves who is calling. Providers that take a
static key in a header have none.
"""

from modelyard_proxy.cloudauth.authorizer import CallAuthorizer, OutgoingCall
from modelyard_proxy.cloudauth.registry import Authorizers

__all__ = ["Authorizers", "CallAuthorizer", "OutgoingCall"]
