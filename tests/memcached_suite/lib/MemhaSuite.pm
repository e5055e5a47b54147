package MemhaSuite;
# Loaded by tests/memcached_suite/run_suite.py before each of memcached's own t/*.t tests
# (perl -I<this dir> -MMemhaSuite t/<test>.t). It loads memcached's t/lib/MemcachedTest.pm unchanged and
# replaces a few of its functions BEFORE the test's `use MemcachedTest` imports them:
#
#   new_memcached      MEMHA_SUITE_MODE=sidecar: starts a primary AND a backup memcached with the test's own
#                      arguments (-F, -C, -m, -I, -o ...), then memha-sidecar in front of them
#                      (-p <free port> -s primary -b backup), and returns a handle whose host/port/sock/new_sock
#                      are the sidecar's. The test's client only ever talks to the sidecar.
#                      MEMHA_SUITE_MODE=direct: memcached's own new_memcached (the baseline).
#                      In both modes the member listens on TCP 127.0.0.1 (upstream defaults to a unix socket).
#   mem_move_time      upstream sends `debugtime N`, which only the memcached-debug build understands; the Debian
#                      binary answers ERROR. Here: sleep N+1 real seconds (the clock really moves), both modes.
#   supports_extstore  0: extstore blocks (metaget.t's tail) check server storage internals; out of scope.
#
# Environment: MEMHA_SUITE_TLIB (memcached's t/lib), MEMHA_SUITE_MODE (direct|sidecar), MEMHA_SIDECAR (binary),
# MEMHA_SUITE_SIDECAR_ARGS (extra sidecar arguments), MEMHA_SUITE_LOGDIR (sidecar logs),
# MEMHA_SUITE_TEST (test name, for log file names).
use strict;
use warnings;
use IO::Socket::INET;
use POSIX ();

BEGIN {
    die "MemhaSuite: MEMHA_SUITE_TLIB is not set\n" unless $ENV{MEMHA_SUITE_TLIB};
    unshift @INC, $ENV{MEMHA_SUITE_TLIB};
}
require MemcachedTest;

my $upstream_new_memcached = \&MemcachedTest::new_memcached;
my $mode = $ENV{MEMHA_SUITE_MODE} || 'direct';
my $instance = 0;

# memcached's -I argument (bytes, or with a k/m suffix) -> the sidecar's --max-item-size.
sub item_size_max {
    my ($args) = @_;
    return undef unless $args =~ /(?:^|\s)-I\s*(\d+)([kKmM]?)/;
    my ($n, $unit) = ($1, lc $2);
    $n *= 1024 if $unit eq 'k';
    $n *= 1024 * 1024 if $unit eq 'm';
    return $n;
}

# A port that free_port() found free can be taken before the sidecar binds it (other tests run alongside):
# an early exit is retried on another port.
sub start_sidecar {
    my @args = @_;
    for my $attempt (1 .. 3) {
        my @r = eval { start_sidecar_once(@args) };
        return @r if @r;
        die $@ if $attempt == 3 || $@ !~ /exited at start/;
    }
}

sub start_sidecar_once {
    my ($args, $primary, $backup) = @_;
    my $exe = $ENV{MEMHA_SIDECAR} or die "MemhaSuite: MEMHA_SIDECAR is not set\n";
    my $port = MemcachedTest::free_port();
    my @cmd = ($exe, '-p', $port, '-l', '127.0.0.1',
               '-s', '127.0.0.1:' . $primary->port, '-b', '127.0.0.1:' . $backup->port,
               '--admin-port', '0');
    my $max = item_size_max($args);
    push @cmd, '--max-item-size', $max if defined $max;
    push @cmd, split(' ', $ENV{MEMHA_SUITE_SIDECAR_ARGS}) if $ENV{MEMHA_SUITE_SIDECAR_ARGS};
    my $n = $instance++;
    my $log = '/dev/null';
    if ($ENV{MEMHA_SUITE_LOGDIR}) {
        my $name = $ENV{MEMHA_SUITE_TEST} || 'test';
        $log = "$ENV{MEMHA_SUITE_LOGDIR}/$name.sidecar$n.log";
        if (open(my $fh, '>', $log)) {
            print $fh "# @cmd\n# memcached arguments of both members: $args\n";
            close $fh;
        }
    }
    my $pid = fork();
    die "MemhaSuite: fork: $!\n" unless defined $pid;
    if (!$pid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $log);
        open(STDERR, '>&', \*STDOUT);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    for (1 .. 200) {
        my $conn = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        return ($pid, $port, $conn) if $conn;
        if (waitpid($pid, POSIX::WNOHANG()) != 0) {
            my $tail = '';
            if (open(my $fh, '<', $log)) { local $/; $tail = <$fh> // ''; close $fh; }
            die "MemhaSuite: memha-sidecar exited at start (@cmd): $tail\n";
        }
        select undef, undef, undef, 0.05;
    }
    kill 'KILL', $pid;
    die "MemhaSuite: memha-sidecar did not listen on 127.0.0.1:$port within 10 s (@cmd)\n";
}

sub new_memcached {
    my ($args, $port) = @_;
    $args = '' unless defined $args;
    # TCP on loopback for the members (upstream picks a unix socket when -l/-s are absent).
    $args .= ' -l 127.0.0.1' unless $args =~ /(?:^|\s)-[ls]\s/;
    return $upstream_new_memcached->($args, $port) if $mode eq 'direct';
    die "MemhaSuite: unknown MEMHA_SUITE_MODE '$mode'\n" unless $mode eq 'sidecar';

    my $primary = $upstream_new_memcached->($args);
    my $backup = $upstream_new_memcached->($args);
    my ($pid, $sport, $conn) = start_sidecar($args, $primary, $backup);
    # A Memcached::Handle (sock, new_sock, host, port, stop ... are the sidecar's); the member handles kept
    # inside are destroyed, and their memcached stopped, after the sidecar has exited.
    return MemhaSuite::Handle->new(pid => $pid, conn => $conn, host => '127.0.0.1', port => $sport,
                                   memha_primary => $primary, memha_backup => $backup);
}

sub mem_move_time {
    my ($sock, $move) = @_;
    select undef, undef, undef, $move + 1;
}

package MemhaSuite::Handle;
our @ISA = ('Memcached::Handle');

# SIGINT to the sidecar (it drains and exits), wait up to 5 s for it, then let the members go: stopping them
# first would make the sidecar log the teardown as member failures.
sub DESTROY {
    my $self = shift;
    return unless $self->{pid};
    kill 'INT', $self->{pid};
    for (1 .. 100) {
        last if waitpid($self->{pid}, POSIX::WNOHANG()) != 0;
        select undef, undef, undef, 0.05;
    }
    delete $self->{pid};
}

package MemhaSuite;

{
    no warnings 'redefine';
    *MemcachedTest::new_memcached = \&new_memcached;
    *MemcachedTest::mem_move_time = \&mem_move_time;
    *MemcachedTest::supports_extstore = sub { 0 };
}

1;
