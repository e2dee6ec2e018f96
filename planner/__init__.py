"""The compiler: user program -> task graph IR -> passes -> Plan."""
