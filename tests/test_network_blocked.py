import socket

import pytest
from pytest_socket import SocketBlockedError, SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_tests_cannot_reach_other_hosts():
    with pytest.raises((SocketBlockedError, SocketConnectBlockedError)):
        socket.create_connection(("10.255.255.1", 80), timeout=0.1)
