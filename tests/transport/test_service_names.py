"""The service names the client dials and the server registers are the schema's."""

from __future__ import annotations

from secagg.transport import secagg_pb2 as pb
from secagg.transport.service import METHOD, RPC, SERVICE


def test_method_is_the_participate_rpc_of_the_schema() -> None:
    method = pb.DESCRIPTOR.services_by_name["Aggregation"].methods_by_name["Participate"]
    assert (method.containing_service.full_name, method.name) == (SERVICE, RPC)
    assert METHOD == "/secagg.v1.Aggregation/Participate"
