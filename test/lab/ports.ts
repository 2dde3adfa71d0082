/** Where the lab's services listen on the KVM host (inside `vmd-host`); shared by services.ts and the tests. */
export const ECHO_PORT = 7000;
export const VNC_FIRST_PORT = 5900;
export const VNC_LAST_PORT = 6000;
/** The unix-socket service's file name inside the lab's run dir. */
export const UNIX_SOCKET_NAME = 'vnc.sock';
